"""Device status and availability: one implementation for the API views, the bureau overview and
the daily report."""
