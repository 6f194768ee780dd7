package main

import (
	"context"
	"fmt"
)

// apiCounts is one reading of the request counters: the agent's own and
// the API server's for Nodes.
type apiCounts struct {
	agentRequests, agentErrors float64
	server                     serverNodeRequests
}

// readAPI reads both request counters, the agent's and the API server's.
func (e *env) readAPI(ctx context.Context) (apiCounts, error) {
	a, err := e.agentMetrics(ctx)
	if err != nil {
		return apiCounts{}, err
	}
	s, err := e.serverMetrics(ctx)
	if err != nil {
		return apiCounts{}, err
	}
	return apiCounts{
		agentRequests: sum(a, "nodebridge_agent_api_requests_total", nil),
		agentErrors:   sum(a, "nodebridge_agent_api_errors_total", nil),
		server:        nodeRequests(s),
	}, nil
}

// memoryNow reads the agent's memory, failing when the agent has exited.
func (e *env) memoryNow() (memory, error) {
	if done, err := e.node.Agent().Exited(); done {
		return memory{}, fmt.Errorf("agent exited (%v):\n%s", err, lastLines(e.node.AgentLogs(), 30))
	}
	return readMemory(e.pid)
}

// measure runs the phases in order, filling r: the creates, the resync
// reconciles at full size, the churn; memory and API counters around them.
func (e *env) measure(ctx context.Context, r *report) error {
	var err error
	if r.Memory.Idle, err = e.memoryNow(); err != nil {
		return err
	}
	base, err := e.readAPI(ctx)
	if err != nil {
		return err
	}
	r.API.ServerBeforeAgent = e.beforeAgent
	r.API.AgentAtReady, r.API.ServerAtReady = base.agentRequests, base.server
	if r.Create, err = e.createPeers(ctx); err != nil {
		return err
	}
	if r.Memory.Converged, err = e.memoryNow(); err != nil {
		return err
	}
	if r.Create.Converged {
		rec, err := e.measureReconciles(ctx, e.o.samples, e.o.peers)
		if err != nil {
			return err
		}
		r.Reconcile = &rec
	} else {
		r.Warnings = append(r.Warnings, "the creates did not converge: reconcile not timed")
	}
	if r.Churn, err = e.churn(ctx); err != nil {
		return err
	}
	if r.Memory.End, err = e.memoryNow(); err != nil {
		return err
	}
	end, err := e.readAPI(ctx)
	if err != nil {
		return err
	}
	r.API.AgentDuringRun = end.agentRequests - base.agentRequests
	r.API.AgentErrors = end.agentErrors - base.agentErrors
	r.API.ServerDuringRun = end.server.minus(base.server)
	r.API.NodeChanges = e.o.peers + 2*e.o.churn
	return nil
}
