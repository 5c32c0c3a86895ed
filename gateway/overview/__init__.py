"""The bureau's county overview: figures per site from the alarm store and the device status."""
