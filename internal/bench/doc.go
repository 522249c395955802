// Package bench measures Parley: room fan-out (GossipSub against FloodSub
// and the real chat.Service), a larger room on a simulated network, a
// message burst, direct-message round trips, the start-up time and memory
// of the parley binary, and discovery and the bridge on the
// network-namespace test bed (internal/netlab).
//
// Every measurement is a function that returns a result struct; the
// command cmd/parley-bench runs them, prints a table and writes
// docs/benchmarks.md. Nothing here is a timed assertion: the tests of this
// package only check the helpers, and the Benchmark functions run only
// with go test -bench.
//
// All traffic stays on loopback (127.0.0.1), except in the test bed, whose
// namespaces are linked to nothing outside, and in the simulated network
// (SimHosts, RunSim), which has no sockets at all: go-libp2p's mocknet
// carries the streams in process, and a wrapper around each application
// stream adds the latency and bandwidth of a link. mDNS is never enabled
// outside the test bed.
package bench
