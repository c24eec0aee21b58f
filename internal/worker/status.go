package worker

import (
	"fmt"
	"strings"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
)

// DeriveStatus is the component status Rainbond users know, from what was
// asked (c) and what runs (instances, rollout).
func DeriveStatus(c *model.Component, instances []model.Instance, rollout runtime.RolloutState) (model.ComponentStatus, string) {
	switch c.Desired {
	case model.DesiredUndeployed:
		return model.StatusUndeploy, ""
	case model.DesiredStopped:
		if live := countLive(instances); live > 0 {
			return model.StatusStopping, fmt.Sprintf("%d instance(s) still stopping", live)
		}
		return model.StatusClosed, ""
	}
	if c.Instances == 0 {
		if live := countLive(instances); live > 0 {
			return model.StatusStopping, fmt.Sprintf("scaling to 0: %d instance(s) still stopping", live)
		}
		return model.StatusClosed, "scaled to 0 instances"
	}
	var ready, abnormal, pending int
	versions := map[int64]bool{}
	var reasons []string
	var unscheduled *model.Instance
	for _, in := range instances {
		if in.Status == model.InstanceTerminating || in.Status == model.InstanceSucceeded {
			continue
		}
		versions[in.Version] = true
		switch in.Status {
		case model.InstanceRunning:
			ready++
		case model.InstanceAbnormal, model.InstanceFailed, model.InstanceUnhealthy:
			abnormal++
			reasons = append(reasons, fmt.Sprintf("%s: %s", in.ID, firstNonEmpty(in.Reason, string(in.Status))))
		case model.InstanceScheduling:
			pending++
			if unscheduled == nil {
				unscheduled = &in
			}
		default:
			pending++
		}
	}
	if rollout.Phase == runtime.RolloutFailed {
		return model.StatusAbnormal, firstNonEmpty(rollout.Message, rollout.Reason)
	}
	if unscheduled != nil && abnormal == 0 && ready < c.Instances {
		// What keeps the component from running is the machine, not the
		// app: say so in every view, with the resource, ask and free figures.
		return model.StatusScheduling, fmt.Sprintf("%d of %d instance(s) ready; instance %s cannot be scheduled: %s",
			ready, c.Instances, unscheduled.ID, firstNonEmpty(unscheduled.Message, unscheduled.Reason))
	}
	if rollout.Phase == runtime.RolloutProgress && len(versions) > 1 {
		return model.StatusUpgrade, fmt.Sprintf("rolling out version %d: %d of %d ready", rollout.Version, ready, c.Instances)
	}
	switch {
	case abnormal > 0 && ready == 0:
		return model.StatusAbnormal, strings.Join(reasons, "; ")
	case abnormal > 0:
		return model.StatusSomeAbnormal, fmt.Sprintf("%d of %d instance(s) abnormal: %s", abnormal, ready+abnormal+pending, strings.Join(reasons, "; "))
	case ready >= c.Instances:
		return model.StatusRunning, ""
	default:
		return model.StatusStarting, fmt.Sprintf("%d of %d instance(s) ready", ready, c.Instances)
	}
}

// countLive counts instances that have not finished stopping.
func countLive(instances []model.Instance) int {
	n := 0
	for _, in := range instances {
		if in.Status != model.InstanceSucceeded && in.Status != model.InstanceFailed {
			n++
		}
	}
	return n
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
