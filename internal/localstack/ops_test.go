package localstack

import (
	"slices"
	"testing"
)

func TestSortReplicaNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"ten replicas and more go by number, service1-2 before service1-10",
			[]string{"service1-10", "service1-2", "service1-12", "service1-1", "service1-11", "service1-9",
				"service1-3", "service1-4", "service1-5", "service1-6", "service1-7", "service1-8"},
			[]string{"service1-1", "service1-2", "service1-3", "service1-4", "service1-5", "service1-6",
				"service1-7", "service1-8", "service1-9", "service1-10", "service1-11", "service1-12"}},
		{"services go by name, then each by number",
			[]string{"service2-10", "service1-10", "service2-2", "service1-2"},
			[]string{"service1-2", "service1-10", "service2-2", "service2-10"}},
		{"a name without a number goes first among its service's",
			[]string{"web-3", "web", "web-1"},
			[]string{"web", "web-1", "web-3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := slices.Clone(tc.in)
			SortReplicaNames(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
