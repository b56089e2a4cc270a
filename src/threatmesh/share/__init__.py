"""Share: the egress policy that every outgoing path calls, and (later) federation."""
