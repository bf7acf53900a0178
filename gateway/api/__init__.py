"""The hub's HTTP surface, one ``RouteTableDef`` per resource."""
