"""Federation: peers, and the sync that pulls from and pushes to them over TAXII 2.1.

- `peers`: registering a peer and the account it uses to reach this node.
- `recipients`: the policy's view of a peer (a `share.policy.Recipient`).
- `egress`: the one door objects leave by on the way to a peer (`share.outbound`).
- `transport`: HTTP to a peer's TAXII API root (requests, keep-alive, byte counts).
- `signatures`: signed batch manifests on the wire, checked on receipt.
- `sync`: one round with one peer: pull (resumable cursors), push (batched, idempotent).
- `receive`: what a peer pushes here, screened before the TAXII server stores it.
- `revocations`: deletions propagate as revocations.
- `loop`, `node_sync`: the background sync that `threatmesh serve` runs.
"""
