"""The demonstration-zone pilots shipped with Swiftchain, one YAML file each (package data,
read through importlib.resources so an installed wheel finds them too)."""
