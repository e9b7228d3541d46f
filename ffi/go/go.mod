module github.com/tether-csi/tether/ffi/go

go 1.26
