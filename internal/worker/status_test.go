package worker

import (
	"testing"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
)

func TestDeriveStatus(t *testing.T) {
	run := func(id string, v int64) model.Instance {
		return model.Instance{ID: id, Status: model.InstanceRunning, Version: v}
	}
	crash := model.Instance{ID: "x", Status: model.InstanceAbnormal, Reason: "CrashLoopBackOff", Version: 1}
	starting := model.Instance{ID: "s", Status: model.InstanceNotReady, Version: 2}
	cases := []struct {
		name      string
		desired   model.DesiredState
		want      int
		instances []model.Instance
		rollout   runtime.RolloutState
		status    model.ComponentStatus
	}{
		{"never deployed", model.DesiredUndeployed, 1, nil, runtime.RolloutState{}, model.StatusUndeploy},
		{"stopped", model.DesiredStopped, 1, nil, runtime.RolloutState{}, model.StatusClosed},
		{"stopping", model.DesiredStopped, 1, []model.Instance{{Status: model.InstanceTerminating}}, runtime.RolloutState{}, model.StatusStopping},
		{"scaled to zero", model.DesiredRunning, 0, nil, runtime.RolloutState{}, model.StatusClosed},
		{"all ready", model.DesiredRunning, 2, []model.Instance{run("a", 1), run("b", 1)}, runtime.RolloutState{Phase: runtime.RolloutComplete}, model.StatusRunning},
		{"starting", model.DesiredRunning, 2, []model.Instance{run("a", 1), starting}, runtime.RolloutState{}, model.StatusStarting},
		{"some abnormal", model.DesiredRunning, 2, []model.Instance{run("a", 1), crash}, runtime.RolloutState{}, model.StatusSomeAbnormal},
		{"abnormal", model.DesiredRunning, 1, []model.Instance{crash}, runtime.RolloutState{}, model.StatusAbnormal},
		{"upgrade", model.DesiredRunning, 1, []model.Instance{run("a", 1), starting}, runtime.RolloutState{Phase: runtime.RolloutProgress, Version: 2}, model.StatusUpgrade},
		{"image missing", model.DesiredRunning, 1, nil, runtime.RolloutState{Phase: runtime.RolloutFailed, Reason: "ErrImagePull", Message: "not found"}, model.StatusAbnormal},
	}
	for _, tc := range cases {
		c := &model.Component{Desired: tc.desired, Instances: tc.want}
		got, msg := DeriveStatus(c, tc.instances, tc.rollout)
		if got != tc.status {
			t.Errorf("%s: got %s (%s), want %s", tc.name, got, msg, tc.status)
		}
	}
}
