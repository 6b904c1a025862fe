"""The always-on service: `digest run`'s scheduler and its log format."""
