// The README's Go snippet: the body of Example is the text between the go markers of the
// root README.md (TestReadmeSnippet keeps them equal), so the README's code compiles and runs.

package tether_test

import (
	"errors"
	"fmt"
	"log"

	tether "github.com/tether-csi/tether/ffi/go"
)

func Example() {
	engine, err := tether.New()
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()

	rwo := tether.Access{Mode: tether.RWO}
	res, err := engine.Publish("pvc-1", "node-a", rwo)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Kind, "epoch", res.Epoch)

	// A second writer is refused; the typed error names the node holding the volume.
	_, err = engine.Publish("pvc-1", "node-b", rwo)
	var conflict *tether.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("refused: held by", conflict.AttachedTo)
	}
	// Output:
	// Attached epoch 1
	// refused: held by [node-a]
}
