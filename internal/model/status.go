package model

// ComponentStatus is the status of a component as a whole, after Rainbond.
type ComponentStatus string

const (
	StatusUndeploy     ComponentStatus = "undeploy"      // never deployed
	StatusBuilding     ComponentStatus = "building"      // a build runs
	StatusBuildFailure ComponentStatus = "build_failure" // the last build failed
	StatusClosed       ComponentStatus = "closed"        // 已关闭
	StatusStarting     ComponentStatus = "starting"      // 启动中
	StatusScheduling   ComponentStatus = "scheduling"    // 调度中: not enough memory or CPU to start an instance
	StatusWaiting      ComponentStatus = "waiting"       // 等待启动: a dependency is not ready
	StatusRunning      ComponentStatus = "running"       // 运行中
	StatusUpgrade      ComponentStatus = "upgrade"       // 升级中: old and new versions both run
	StatusSomeAbnormal ComponentStatus = "some_abnormal" // 部分实例异常
	StatusAbnormal     ComponentStatus = "abnormal"      // 运行异常
	StatusStopping     ComponentStatus = "stopping"      // 关闭中
	StatusUnknown      ComponentStatus = "unknown"
)

// Label is the status as the Chinese console shows it.
func (s ComponentStatus) Label() string {
	return map[ComponentStatus]string{
		StatusUndeploy: "未部署", StatusBuilding: "构建中", StatusBuildFailure: "构建失败",
		StatusClosed: "已关闭", StatusStarting: "启动中", StatusScheduling: "调度中", StatusWaiting: "等待启动",
		StatusRunning: "运行中", StatusUpgrade: "升级中", StatusSomeAbnormal: "部分实例异常",
		StatusAbnormal: "运行异常", StatusStopping: "关闭中", StatusUnknown: "未知",
	}[s]
}

// InstanceStatus is the status of one running copy of a component.
type InstanceStatus string

const (
	InstanceScheduling  InstanceStatus = "scheduling" // 调度中: not enough resources
	InstanceInitiating  InstanceStatus = "initiating"
	InstanceNotReady    InstanceStatus = "not_ready"
	InstanceUnhealthy   InstanceStatus = "unhealthy"
	InstanceRunning     InstanceStatus = "running"
	InstanceAbnormal    InstanceStatus = "abnormal"
	InstanceTerminating InstanceStatus = "terminating"
	InstanceSucceeded   InstanceStatus = "succeeded"
	InstanceFailed      InstanceStatus = "failed"
)

// Instance is one running copy of a component as the runtime reports it.
// Every status carries a reason, a message and advice for the user.
type Instance struct {
	ID       string         `json:"id"`
	Status   InstanceStatus `json:"status"`
	Reason   string         `json:"reason"`
	Message  string         `json:"message"`
	Advice   string         `json:"advice"`
	Version  int64          `json:"version,omitempty"`
	Address  string         `json:"address,omitempty"`
	Restarts int            `json:"restarts"`
}
