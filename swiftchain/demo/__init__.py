"""`swiftchain demo`: the whole network on one machine, its story checked step by step.

``run`` composes the parts (it imports the hub); ``render`` only draws, so `swiftchain replay`
can use it without loading the hub.
"""
