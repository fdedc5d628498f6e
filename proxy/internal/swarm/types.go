package swarm

// The Engine API's answers, as far as the proxy reads them (API 1.41; every field
// here has been in the API since 1.30). Unknown fields are ignored.

// Service is one entry of GET /services.
type Service struct {
	ID           string
	Spec         ServiceSpec
	UpdateStatus *struct {
		State string // "updating" during a rolling update, "completed" after it...
	}
}

// ServiceSpec is a service's desired state.
type ServiceSpec struct {
	Name         string
	Labels       map[string]string
	TaskTemplate struct {
		ContainerSpec struct {
			Env []string // "KEY=value"
		}
		Networks []NetworkTarget
	}
	Networks []NetworkTarget // before API 1.25 the networks were here
}

// NetworkTarget names a network a service joins: its ID (or, as written, its name).
type NetworkTarget struct {
	Target string
}

// Task is one entry of GET /tasks: one replica of a service.
type Task struct {
	ID           string
	ServiceID    string
	Slot         int
	DesiredState string // "running" for a task that should run
	Status       struct {
		State           string // "running" once started (and, with a HEALTHCHECK, healthy)
		ContainerStatus struct {
			ContainerID string
		}
	}
	NetworksAttachments []NetworkAttachment
}

// NetworkAttachment is a task's address on one network.
type NetworkAttachment struct {
	Network struct {
		ID   string
		Spec struct {
			Name    string
			Ingress bool
		}
	}
	Addresses []string // "10.0.1.5/24"
}

// Event is one entry of the GET /events stream.
type Event struct {
	Type   string // "service"
	Action string // "create", "update", "remove"
	Actor  struct {
		ID         string
		Attributes map[string]string // "name": the service's name
	}
}

// The labels and variables of dockercloud/haproxy's swarm mode.
const (
	// DeactivateLabel set to "true" on a service makes the proxy leave it out.
	DeactivateLabel = "com.docker.dockercloud.haproxy.deactivate"
	// StackLabel is set by docker stack deploy to the stack's name.
	StackLabel = "com.docker.stack.namespace"
)
