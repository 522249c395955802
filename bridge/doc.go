// Package bridge runs Parley's public relay/bridge node (`parley relay`):
// a circuit relay v2 service with limits set in one place
// (DefaultResources), the DHT in server mode on both sides, the AutoNAT
// service, and a persistent identity, so that it serves as the bootstrap
// peer and static relay that NATed nodes pass to --bootstrap.
package bridge
