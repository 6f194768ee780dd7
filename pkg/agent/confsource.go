package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// eventConfigRejected is the reason of the Event on the own Node while the
// conflist ConfigMap cannot be used.
const eventConfigRejected = "ConflistConfigRejected"

// confSource is the conflist template of the --conflist-configmap
// ConfigMap. It is read with one Get on every resync (and until a first
// read succeeds), not watched: the loop already runs on every resync, a
// change must show within it and no sooner, and a Get of one named object
// needs only the "get" verb on that name in RBAC; a watch would need
// "list" and "watch" and a goroutine for a file that changes a few times
// a year.
type confSource struct {
	namespace, name, key string
	get                  func(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	read                 bool      // a read succeeded: tmpl is the answer
	tmpl                 *template // the last good template; nil: none, the defaults
	rejected             string    // the problem last reported, "" when none
	apiErr               string    // the API failure last logged
}

func newConfSource(client kubernetes.Interface, namespace, name, key string) *confSource {
	return &confSource{namespace: namespace, name: name, key: key,
		get: func(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
			return client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		}}
}

// String names the ConfigMap and key, for logs and Events.
func (s *confSource) String() string {
	return fmt.Sprintf("ConfigMap %s/%s key %s", s.namespace, s.name, s.key)
}

// fetch reads the ConfigMap: a template, nil when the ConfigMap does not
// exist (the defaults), or an error that is either the API's (apiErr
// true) or the ConfigMap's content.
// Equivalent to: kubectl -n NAMESPACE get configmap NAME
func (s *confSource) fetch(ctx context.Context) (t *template, apiErr bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	cm, err := s.get(ctx, s.namespace, s.name)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("get ConfigMap %s/%s: %w", s.namespace, s.name, err)
	}
	data, ok := cm.Data[s.key]
	if !ok {
		return nil, false, fmt.Errorf("%s: no such key", s)
	}
	t, err = parseTemplate([]byte(data))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", s, err)
	}
	return t, false, nil
}

// refreshConf reads the ConfigMap and reports a change of state: a template
// accepted, or rejected (log, metric, Event on own), once per problem. A
// rejected or unreadable ConfigMap leaves the last good template in place.
func (a *agent) refreshConf(ctx context.Context, own *corev1.Node) {
	s := a.conf
	t, apiErr, err := s.fetch(ctx)
	switch {
	case apiErr:
		a.metrics.update(func(m *Metrics) { m.apiErrors++ })
		if err.Error() != s.apiErr {
			a.log.Warn("read the conflist template; keeping the last one", "err", err)
			s.apiErr = err.Error()
		}
		return
	case err != nil:
		a.metrics.update(func(m *Metrics) { m.conflistConfigRejected = true })
		if err.Error() != s.rejected {
			s.rejected = err.Error()
			a.log.Error("conflist template rejected; the last good conflist stays", "err", err)
			a.events.nodeWarning(a.cfg.NodeName, own, eventConfigRejected,
				"conflist template rejected, the last good conflist stays: "+err.Error())
		}
		return
	}
	a.metrics.update(func(m *Metrics) { m.conflistConfigRejected = false })
	if !s.read || s.rejected != "" || s.apiErr != "" {
		a.log.Info("conflist template read", "from", s.String(), "defaults", t == nil)
	}
	s.read, s.tmpl, s.rejected, s.apiErr = true, t, "", ""
}

// renderConf renders the conflist from the template, else the defaults;
// ok false: no template read yet, so nothing may be written.
func (a *agent) renderConf(d *desired, mtu int) (conf []byte, ok bool, err error) {
	if a.conf != nil && !a.conf.read {
		return nil, false, nil
	}
	if a.conf != nil && a.conf.tmpl != nil {
		conf, err = a.conf.tmpl.render(&a.cfg, d, mtu)
		return conf, true, err
	}
	conf, err = renderConflist(&a.cfg, d, mtu)
	return conf, true, err
}

// keepUnread is the conflist step's answer while the template is unknown:
// the file on disk, the last good one, stays; without one it is an error.
func (a *agent) keepUnread() error {
	_, err := os.Stat(a.cfg.confPath())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("conflist %s not written: no usable conflist template from %s yet", a.cfg.confPath(), a.conf)
	}
	if err != nil {
		return fmt.Errorf("stat conflist %s: %w", a.cfg.confPath(), err)
	}
	return nil
}
