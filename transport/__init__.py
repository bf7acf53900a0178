"""What the hub (``gateway``) and the agent (``edge``) share below the wire format: the MQTT
link (``transport.mqtt``) and its reconnect delays (``transport.backoff``). It imports
neither of them."""
