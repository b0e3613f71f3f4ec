// Package deploy holds the operator kit: Prometheus alerting rules
// (prometheus/alerts.yml, their promtool unit tests and an example
// scrape configuration) and a Grafana dashboard (grafana/lessee.json).
// It has no code; its test starts a real `lessee serve`, scrapes
// /metrics and fails when a rule or a panel names a metric the service
// does not export.
package deploy
