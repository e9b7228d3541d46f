// Access questions to the server: SelfSubjectAccessReview (may I?) and SelfSubjectRulesReview
// (everything I may do in a namespace), as the identity of the client that asks; and the
// ServiceAccount tokens such an identity asks with.
package apitest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Perm is one verb on one resource (group "" is the core group), in a namespace or cluster-wide.
type Perm struct {
	Verb, Group, Resource, Namespace string
}

func (p Perm) String() string {
	where := "cluster-wide"
	if p.Namespace != "" {
		where = "in " + p.Namespace
	}
	return fmt.Sprintf("%s %s %s", p.Verb, p.key(), where)
}

// key is "group/resource:verb" without the namespace, the unit of a rules review.
func (p Perm) key() string {
	return fmt.Sprintf("%s/%s:%s", p.Group, p.Resource, p.Verb)
}

// review posts one authorization review (kind, from resource) with spec, as the client's identity.
func review(c *Client, resource, kind string, spec map[string]any) (Response, error) {
	body := map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}
	resp, err := c.Do(http.MethodPost, "/apis/authorization.k8s.io/v1/"+resource, "application/json", body)
	if err == nil && resp.Status != http.StatusCreated {
		err = fmt.Errorf("%s %v: %d %s", kind, spec, resp.Status, resp.Body)
	}
	return resp, err
}

func allowed(c *Client, resource, kind string, spec map[string]any) (bool, error) {
	resp, err := review(c, resource, kind, spec)
	if err != nil {
		return false, err
	}
	var answer struct {
		Status struct {
			Allowed bool `json:"allowed"`
		} `json:"status"`
	}
	return answer.Status.Allowed, resp.Decode(&answer)
}

func attributes(p Perm) map[string]any {
	resource, sub, _ := strings.Cut(p.Resource, "/")
	return map[string]any{"resourceAttributes": map[string]any{
		"verb": p.Verb, "group": p.Group, "resource": resource, "subresource": sub, "namespace": p.Namespace,
	}}
}

// Allowed asks the server whether the client's own identity may do p.
func Allowed(c *Client, p Perm) (bool, error) {
	return allowed(c, "selfsubjectaccessreviews", "SelfSubjectAccessReview", attributes(p))
}

// AllowedAs asks the server whether user, in groups, may do p (the client must be allowed to ask).
func AllowedAs(c *Client, user string, groups []string, p Perm) (bool, error) {
	spec := attributes(p)
	spec["user"], spec["groups"] = user, groups
	return allowed(c, "subjectaccessreviews", "SubjectAccessReview", spec)
}

// Rules lists, as sorted "group/resource:verb" keys, every resource permission the client's identity
// has in namespace (its cluster-wide ones included). Rules limited to named objects are marked so.
func Rules(c *Client, namespace string) ([]string, error) {
	resp, err := review(c, "selfsubjectrulesreviews", "SelfSubjectRulesReview", map[string]any{"namespace": namespace})
	if err != nil {
		return nil, err
	}
	var answer struct {
		Status struct {
			ResourceRules []struct {
				Verbs, APIGroups, Resources, ResourceNames []string
			} `json:"resourceRules"`
			Incomplete bool `json:"incomplete"`
		} `json:"status"`
	}
	if err := resp.Decode(&answer); err != nil {
		return nil, err
	}
	if answer.Status.Incomplete {
		return nil, fmt.Errorf("the rules review in %s is incomplete: %s", namespace, resp.Body)
	}
	set := map[string]bool{}
	for _, r := range answer.Status.ResourceRules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					key := Perm{Verb: v, Group: g, Resource: res}.key()
					if len(r.ResourceNames) > 0 {
						key += "[" + strings.Join(r.ResourceNames, ",") + "]"
					}
					set[key] = true
				}
			}
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// ServiceAccountToken mints a real token of ServiceAccount namespace/sa (TokenRequest, as the
// kubelet does for a pod that mounts one), asked for by c, valid for a day.
func ServiceAccountToken(c *Client, namespace, sa string) (string, error) {
	request := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"expirationSeconds": 86400}}
	resp, err := c.Do(http.MethodPost, fmt.Sprintf("/api/v1/namespaces/%s/serviceaccounts/%s/token", namespace, sa),
		"application/json", request)
	if err != nil {
		return "", err
	}
	if resp.Status != http.StatusCreated {
		return "", fmt.Errorf("TokenRequest for %s/%s: %d %s", namespace, sa, resp.Status, resp.Body)
	}
	var answer struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	return answer.Status.Token, resp.Decode(&answer)
}
