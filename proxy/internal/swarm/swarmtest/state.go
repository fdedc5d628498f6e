package swarmtest

import (
	"encoding/json"
	"strings"
)

// The helpers below change the recorded swarm as the real one would change. A service
// is named by its name in the stack file ("service1") or in full ("dropin_service1").
// They panic on a name the recording does not have: that is a broken test.

// ServiceID is the ID of the service named name.
func (s *State) ServiceID(name string) string { return str(s.service(name), "ID") }

// SetEnv sets (or, with value "", removes) a variable of a service's containers, as
// docker service update --env-add (--env-rm) does.
func (s *State) SetEnv(service, key, value string) {
	cs := obj(obj(obj(s.service(service), "Spec"), "TaskTemplate"), "ContainerSpec")
	var env []any
	for _, kv := range list(cs, "Env") {
		if k, _, _ := strings.Cut(kv.(string), "="); k != key {
			env = append(env, kv)
		}
	}
	if value != "" {
		env = append(env, key+"="+value)
	}
	cs["Env"] = env
}

// SetLabel sets a label of a service (docker service update --label-add).
func (s *State) SetLabel(service, key, value string) {
	spec := obj(s.service(service), "Spec")
	labels, _ := spec["Labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
		spec["Labels"] = labels
	}
	labels[key] = value
}

// SetUpdateState sets a service's UpdateStatus.State, "updating" during a rolling
// update, "completed" after it.
func (s *State) SetUpdateState(service, state string) {
	s.service(service)["UpdateStatus"] = map[string]any{"State": state}
}

// TasksOf are the tasks of a service.
func (s *State) TasksOf(service string) []map[string]any {
	id := s.ServiceID(service)
	var out []map[string]any
	for _, t := range s.Tasks {
		if str(t, "ServiceID") == id {
			out = append(out, t)
		}
	}
	return out
}

// ProxyContainer is the container ID of the proxy's task: the host name the proxy
// had in the recording.
func (s *State) ProxyContainer() string {
	return str(obj(obj(s.TasksOf("proxy")[0], "Status"), "ContainerStatus"), "ContainerID")
}

// SetAddress gives a task the address ip on its networks but ingress, as if the
// task ran there (tests put their backends on 127.0.0.0/8 addresses).
func SetAddress(task map[string]any, ip string) {
	for _, a := range list(task, "NetworksAttachments") {
		att := a.(map[string]any)
		if obj(obj(att, "Network"), "Spec")["Ingress"] == true {
			continue
		}
		att["Addresses"] = []any{ip + "/8"}
	}
}

// AddTask starts one more task of a service, a copy of its first one with the given
// ID and address, running.
func (s *State) AddTask(service, id, ip string) {
	t := clone(s.TasksOf(service)[0])
	t["ID"] = id
	obj(obj(t, "Status"), "ContainerStatus")["ContainerID"] = (id + strings.Repeat("0", 64))[:64]
	SetAddress(t, ip)
	s.Tasks = append(s.Tasks, t)
}

// SetTaskState sets the state a task reports (Status.State: "starting", "running"...).
func SetTaskState(task map[string]any, state string) { obj(task, "Status")["State"] = state }

// RemoveTask removes the task with that ID (its service scaled down, or it stopped).
func (s *State) RemoveTask(id string) {
	var kept []map[string]any
	for _, t := range s.Tasks {
		if str(t, "ID") != id {
			kept = append(kept, t)
		}
	}
	s.Tasks = kept
}

func (s *State) service(name string) map[string]any {
	for _, svc := range s.Services {
		n := str(obj(svc, "Spec"), "Name")
		if n == name || strings.HasSuffix(n, "_"+name) {
			return svc
		}
	}
	panic("swarmtest: the recording has no service " + name)
}

func obj(m map[string]any, key string) map[string]any {
	v, ok := m[key].(map[string]any)
	if !ok {
		panic("swarmtest: no object " + key)
	}
	return v
}

func list(m map[string]any, key string) []any {
	v, _ := m[key].([]any)
	return v
}

func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

func clone(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
