"""Exports: every format that leaves the node, each through the egress policy."""
