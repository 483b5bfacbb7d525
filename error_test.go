package vitalgate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

func TestSettled(t *testing.T) {
	driverErr := errors.New("driver: connection reset")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, true},
		{"an Error", vitalgate.Errorf(vitalgate.ECONFLICT, "exists"), true},
		{"a wrapped Error", fmt.Errorf("store: %w", vitalgate.NotFound("device", driverErr)), true},
		{"the caller's cancellation", fmt.Errorf("query: %w", context.Canceled), true},
		{"the caller's deadline", context.DeadlineExceeded, true},
		{"a driver error", driverErr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vitalgate.Settled(tt.err); got != tt.want {
				t.Errorf("Settled(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	nf := vitalgate.NotFound("device", driverErr)
	if nf.Code != vitalgate.ENOTFOUND || nf.Message != "device not found" || !errors.Is(nf, driverErr) {
		t.Errorf("NotFound = %+v", nf)
	}
}

func TestAuditQueryPlan(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		q       vitalgate.AuditQuery
		want    vitalgate.AuditLead
		wantErr bool
	}{
		{"patient leads", vitalgate.AuditQuery{PatientIndex: "ab", AgentID: "ehr", Limit: 10}, vitalgate.AuditLeadPatient, false},
		{"then the agent", vitalgate.AuditQuery{AgentID: "ehr", Outcome: "0", Limit: 10}, vitalgate.AuditLeadAgent, false},
		{"then the outcome", vitalgate.AuditQuery{Outcome: "8", Action: "R", Limit: 10}, vitalgate.AuditLeadOutcome, false},
		{"then the action", vitalgate.AuditQuery{Action: "R", From: at, Limit: 10}, vitalgate.AuditLeadAction, false},
		{"then the time", vitalgate.AuditQuery{To: at, Limit: 10}, vitalgate.AuditLeadTime, false},
		{"then the site", vitalgate.AuditQuery{Site: "a", Limit: 10}, vitalgate.AuditLeadSite, false},
		{"the site is a residual of any other lead", vitalgate.AuditQuery{Site: "a", AgentID: "ehr", Limit: 10}, vitalgate.AuditLeadAgent, false},
		{"else everything", vitalgate.AuditQuery{Limit: 1}, vitalgate.AuditLeadAll, false},
		{"limit zero", vitalgate.AuditQuery{}, 0, true},
		{"limit too high", vitalgate.AuditQuery{Limit: vitalgate.MaxAuditSearch + 1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lead, args, err := tt.q.Plan()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
					t.Errorf("code = %s, want EINVALID", vitalgate.ErrorCode(err))
				}
				return
			}
			if lead != tt.want {
				t.Errorf("lead = %d, want %d", lead, tt.want)
			}
			if len(args) != 8 || args[6] != tt.q.Limit || args[7] != tt.q.Site {
				t.Errorf("args = %v", args)
			}
		})
	}
	_, args, _ := vitalgate.AuditQuery{From: at, Limit: 5}.Plan()
	if args[4] != vitalgate.AuditIndexTime(at) || args[5] != "~" {
		t.Errorf("time bounds = %v, %v", args[4], args[5])
	}
}
