"""Configuration that ships with Gronkoll: the example file and the device profiles."""
