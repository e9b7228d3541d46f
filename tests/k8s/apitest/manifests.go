// Reading deploy/*.yaml into objects and finding each one's REST path through API discovery.
package apitest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Object is one manifest document: its identity and its JSON form.
type Object struct {
	File, APIVersion, Kind, Name, Namespace string
	JSON                                    []byte
}

func (o Object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.Kind, o.Namespace, o.Name, filepath.Base(o.File))
}

// LoadManifests reads every YAML document of dir's *.yaml files, in file name order.
func LoadManifests(dir string) ([]Object, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objects []Object
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
			obj, err := parseObject(file, doc)
			if err != nil {
				return nil, err
			}
			if obj != nil {
				objects = append(objects, *obj)
			}
		}
	}
	return objects, nil
}

// parseObject reads one document; nil for one with no content (only comments, like the header of
// the generated 00-crd.yaml), which kubectl skips too.
func parseObject(file string, doc []byte) (*Object, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if string(js) == "null" {
		return nil, nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
		return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name", file)
	}
	return &Object{file, head.APIVersion, head.Kind, head.Metadata.Name, head.Metadata.Namespace, js}, nil
}

// Resource is what discovery says about a kind: its plural name and whether it is namespaced.
type Resource struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Namespaced bool   `json:"namespaced"`
}

// Discover returns the top-level resources of one apiVersion, by kind.
func Discover(c *Client, apiVersion string) (map[string]Resource, error) {
	resp, err := c.Do(http.MethodGet, groupPath(apiVersion), "", nil)
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("discovery of %s: %d %s", apiVersion, resp.Status, resp.Body)
	}
	var list struct {
		Resources []Resource `json:"resources"`
	}
	if err := resp.Decode(&list); err != nil {
		return nil, err
	}
	byKind := map[string]Resource{}
	for _, r := range list.Resources {
		if !strings.Contains(r.Name, "/") {
			byKind[r.Kind] = r
		}
	}
	return byKind, nil
}

func groupPath(apiVersion string) string {
	if strings.Contains(apiVersion, "/") {
		return "/apis/" + apiVersion
	}
	return "/api/" + apiVersion
}

// Path is the object's REST path, from its resource's discovery entry.
func (o Object) Path(r Resource) string {
	if r.Namespaced {
		return fmt.Sprintf("%s/namespaces/%s/%s/%s", groupPath(o.APIVersion), o.Namespace, r.Name, o.Name)
	}
	return fmt.Sprintf("%s/%s/%s", groupPath(o.APIVersion), r.Name, o.Name)
}

// Apply sends the object as a server-side apply; dryRun asks the server to validate, admit and
// answer without persisting anything.
func Apply(c *Client, o Object, r Resource, dryRun bool) (Response, error) {
	query := "?fieldManager=tether-tests&force=true"
	if dryRun {
		query += "&dryRun=All"
	}
	return c.Do(http.MethodPatch, o.Path(r)+query, "application/apply-patch+yaml", o.JSON)
}
