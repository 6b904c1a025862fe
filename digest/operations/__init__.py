"""The operations: compose the store, the pure stages and the network."""
