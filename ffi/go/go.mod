module tether.example/ffi/go

go 1.26
