// Package pb holds Parley's protobuf wire formats and their generated Go code.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative parley.proto
