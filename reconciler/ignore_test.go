package reconciler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRemovePointer(t *testing.T) {
	doc := func() map[string]any {
		return map[string]any{
			"spec": map[string]any{
				"replicas": int64(3),
				"template": map[string]any{"spec": map[string]any{"containers": []any{
					map[string]any{"name": "a", "image": "a:1"},
					map[string]any{"name": "b", "image": "b:1"},
				}}},
			},
			"metadata": map[string]any{"annotations": map[string]any{"a/b": "x", "t~x": "y"}},
		}
	}
	tests := []struct {
		name    string
		pointer string
		removed bool
		check   func(t *testing.T, obj map[string]any)
	}{
		{"map field", "/spec/replicas", true, func(t *testing.T, obj map[string]any) {
			assert.NotContains(t, obj["spec"], "replicas")
		}},
		{"missing field is not an error", "/spec/paused", false, nil},
		{"field inside list element", "/spec/template/spec/containers/1/image", true, func(t *testing.T, obj map[string]any) {
			c := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			assert.Equal(t, map[string]any{"name": "b"}, c[1])
			assert.Equal(t, "a:1", c[0].(map[string]any)["image"])
		}},
		{"whole list element", "/spec/template/spec/containers/0", true, func(t *testing.T, obj map[string]any) {
			c := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			require.Len(t, c, 1)
			assert.Equal(t, "b", c[0].(map[string]any)["name"])
		}},
		{"index out of range", "/spec/template/spec/containers/7/image", false, nil},
		{"escaped slash", "/metadata/annotations/a~1b", true, func(t *testing.T, obj map[string]any) {
			assert.NotContains(t, obj["metadata"].(map[string]any)["annotations"], "a/b")
		}},
		{"escaped tilde", "/metadata/annotations/t~0x", true, func(t *testing.T, obj map[string]any) {
			assert.NotContains(t, obj["metadata"].(map[string]any)["annotations"], "t~x")
		}},
		{"through a scalar", "/spec/replicas/x", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := doc()
			removed, err := removePointer(obj, tt.pointer)
			require.NoError(t, err)
			assert.Equal(t, tt.removed, removed)
			if tt.check != nil {
				tt.check(t, obj)
			}
		})
	}
}

func TestValidateIgnoreRules(t *testing.T) {
	tests := []struct {
		name    string
		rule    IgnoreRule
		wantErr string
	}{
		{"good", IgnoreRule{Kind: "Deployment", Name: "web-*", Paths: []string{"/spec/replicas"}}, ""},
		{"pointer without slash", IgnoreRule{Kind: "Deployment", Paths: []string{"spec/replicas"}}, `ignore rule 0 (Deployment/*/*): bad JSON pointer "spec/replicas": must start with /`},
		{"bad glob", IgnoreRule{Name: "[", Paths: []string{"/spec"}}, `bad pattern "["`},
		{"no paths", IgnoreRule{Kind: "Deployment"}, "no paths"},
		{"identity", IgnoreRule{Paths: []string{"/metadata/name"}}, "identifies the object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateIgnoreRules([]IgnoreRule{tt.rule})
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestIgnoreRuleMatches(t *testing.T) {
	web := ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web-frontend"}
	tests := []struct {
		name string
		rule IgnoreRule
		want bool
	}{
		{"any", IgnoreRule{}, true},
		{"kind", IgnoreRule{Kind: "Deployment"}, true},
		{"other kind", IgnoreRule{Kind: "StatefulSet"}, false},
		{"group", IgnoreRule{Group: "apps", Kind: "Deployment"}, true},
		{"other group", IgnoreRule{Group: "extensions", Kind: "Deployment"}, false},
		{"name glob", IgnoreRule{Kind: "Deployment", Name: "web-*"}, true},
		{"name glob miss", IgnoreRule{Kind: "Deployment", Name: "api-*"}, false},
		{"namespace glob", IgnoreRule{Namespace: "sh?p"}, true},
		{"namespace miss", IgnoreRule{Namespace: "prod"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.rule.matches(web))
		})
	}
	paths := ignoredPaths([]IgnoreRule{
		{Kind: "Deployment", Paths: []string{"/spec/replicas"}},
		{Kind: "Service", Paths: []string{"/spec/clusterIP"}},
		{Name: "web-*", Paths: []string{"/metadata/annotations/x"}},
	}, web)
	assert.Equal(t, []string{"/spec/replicas", "/metadata/annotations/x"}, paths)
}
