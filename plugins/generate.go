package plugins

// The generated code is committed: building pvhub needs no protoc. After editing the .proto,
// run `go generate ./plugins` with protoc, protoc-gen-go and protoc-gen-go-grpc on PATH
// (TestGeneratedCodeIsCurrent checks, when they are installed).
//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/pvhub/pvhub/plugins --go-grpc_out=. --go-grpc_opt=module=github.com/pvhub/pvhub/plugins pvhub/transport/v1/transport.proto
