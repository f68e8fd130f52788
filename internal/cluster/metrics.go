package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	renewals, renewFailures prometheus.Counter
	takeovers, lost, fenced prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, m *Manager) *metrics {
	x := &metrics{
		renewals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_cluster_lease_renewals_total", Help: "Heartbeats that renewed this node's lease.",
		}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_cluster_lease_renewal_failures_total", Help: "Heartbeats that failed (the database did not answer in time).",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_cluster_takeovers_total", Help: "Export groups this node claimed from a node whose lease had ended.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_cluster_groups_lost_total", Help: "Export groups this node held and found claimed by another node (its lease had lapsed).",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_cluster_fenced_writes_total", Help: "Checkpoint writes refused because this node no longer held the account's group (fencing).",
		}),
	}
	if reg != nil {
		reg.MustRegister(x.renewals, x.renewFailures, x.takeovers, x.lost, x.fenced,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_cluster_owned_groups", Help: "Export groups this node owns.",
			}, func() float64 {
				m.mu.Lock()
				defer m.mu.Unlock()
				return float64(len(m.mu.held))
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_cluster_owned_accounts", Help: "Enabled accounts this node exports.",
			}, func() float64 {
				if m.exp == nil {
					return 0
				}
				return float64(m.exp.Accounts())
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_cluster_live_nodes", Help: "Live nodes at the last heartbeat, this one included.",
			}, func() float64 {
				m.mu.Lock()
				defer m.mu.Unlock()
				n := 0
				for _, x := range m.mu.nodes {
					if x.Live && !x.Leaving {
						n++
					}
				}
				return float64(n)
			}))
	}
	return x
}
