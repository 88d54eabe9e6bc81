"""Charts and dashboards: matplotlib figures and Grafana JSON."""
