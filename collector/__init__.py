"""Collection of readings from SNMP agents and MQTT devices."""
