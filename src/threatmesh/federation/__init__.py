"""Federation: peers, and the sync that pulls from and pushes to them over TAXII 2.1.

- `recipients`: the policy's view of a peer (a `share.policy.Recipient`).
- `egress`: the one door objects leave by on the way to a peer.
- `transport`: HTTP to a peer's TAXII API root (requests, keep-alive, byte counts).
- `sync`: one round with one peer: pull (resumable cursors), push (batched, idempotent).
- `loop`: the background sync that `threatmesh serve` runs.
"""
