package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// watchCache is one List+Watch of a kind into a Store, each object
// slimmed by slim, poking on every change: what a SharedInformer is made
// of, minus its event queue, plus a retry backoff the informer factory
// does not let one set (the default backs off to 30 s, up to 60 s with
// jitter, while the API server is down, so agents would catch up a minute
// after it comes back). Its methods make it a cache.ReflectorStore.
type watchCache struct {
	store  cache.Store
	poke   func()
	slim   func(any) (any, error)
	synced chan struct{} // closed by the first Replace: the initial list is in
	once   sync.Once
}

func newWatchCache(poke func(), slim func(any) (any, error)) *watchCache {
	return &watchCache{store: cache.NewStore(cache.MetaNamespaceKeyFunc), poke: poke, slim: slim, synced: make(chan struct{})}
}

// Add stores a new object.
func (c *watchCache) Add(obj any) error {
	o, _ := c.slim(obj) // never fails
	defer c.poke()
	return c.store.Add(o)
}

// Update stores a changed object.
func (c *watchCache) Update(obj any) error {
	o, _ := c.slim(obj)
	defer c.poke()
	return c.store.Update(o)
}

// Delete drops an object.
func (c *watchCache) Delete(obj any) error {
	defer c.poke()
	return c.store.Delete(obj)
}

// Replace swaps in a full list (the initial one, or a relist after the
// watch broke) and marks the cache synced.
func (c *watchCache) Replace(list []any, rv string) error {
	for i := range list {
		list[i], _ = c.slim(list[i])
	}
	defer c.poke()
	err := c.store.Replace(list, rv)
	c.once.Do(func() { close(c.synced) })
	return err
}

// Resync is a no-op: the agent has its own resync ticker.
func (c *watchCache) Resync() error { return nil }

// Transformer slims objects in the reflector's own temporary stores too
// (cache.TransformingStore), so a streaming list never holds full ones.
func (c *watchCache) Transformer() cache.TransformFunc { return c.slim }

// storeList returns a store's objects of type T.
func storeList[T any](s cache.Store) []T {
	objs := s.List()
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// nodeCache is the agent's one List+Watch of Nodes, slimmed, poking the
// agent only on the changes that matter.
type nodeCache struct {
	*watchCache
	own string // the own Node: its NetworkUnavailable condition matters too
}

// newNodeCache returns an empty cache poking the agent through poke.
func newNodeCache(own string, poke func()) *nodeCache {
	return &nodeCache{watchCache: newWatchCache(poke, slimNode), own: own}
}

// listThenWatch keeps the reflector to a List and then a Watch, not the
// watch-list stream client-go uses by default since 1.35. A stream whose
// end-of-initial-events bookmark never comes holds the reflector until the
// watch's own timeout, 5 to 10 minutes. The likely case seen here is a watch
// opened while the API server's Node cache was still starting: the test
// agent was not ready after 30 s. A List fails or answers within listTimeout
// and is retried with the reflector's backoff.
type listThenWatch struct{ *cache.ListWatch }

// IsWatchListSemanticsUnSupported tells the reflector not to stream.
func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }

// listTimeout bounds one List of the Nodes. A request with no deadline
// that the API server never answers (one sent while it was starting, say)
// would hold the reflector, and the agent's readiness, forever; cut, it is
// retried with the reflector's backoff. A Node list takes well under a second
// at 1,000 Nodes.
const listTimeout = 15 * time.Second

// run lists and watches Nodes into the cache until ctx ends.
func (c *nodeCache) run(ctx context.Context, client kubernetes.Interface) {
	nodes := client.CoreV1().Nodes()
	listWatch(ctx, "nodes", &corev1.Node{}, c, nodes.List, nodes.Watch)
}

// listWatch lists, then watches, one kind into store until ctx ends: each
// List bounded by listTimeout, retried with a backoff capped at 5 s.
func listWatch[L runtime.Object](ctx context.Context, name string, example runtime.Object, store cache.ReflectorStore,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			ctx, cancel := context.WithTimeout(ctx, listTimeout)
			defer cancel() // List has read and decoded the whole answer when it returns
			return list(ctx, o)
		},
		WatchFuncWithContext: watchFn,
	}
	r := cache.NewReflectorWithOptions(listThenWatch{lw}, example, store, cache.ReflectorOptions{
		Name:    "nodebridge-agent/" + name,
		Backoff: &wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 100, Cap: 5 * time.Second},
	})
	r.RunWithContext(ctx)
}

// list returns the cached Nodes; the agent never asks the API server.
func (c *nodeCache) list() ([]*corev1.Node, error) {
	return storeList[*corev1.Node](c.store), nil
}

// Update stores a changed Node, poking only when its routing changed or the
// own Node's condition flipped: kubelet heartbeats do not reconcile.
func (c *nodeCache) Update(obj any) error {
	n, _ := slimNode(obj)        // never fails
	old, ok, _ := c.store.Get(n) // a plain Store's Get does not fail
	o, isNode := old.(*corev1.Node)
	nn, _ := n.(*corev1.Node)
	if !ok || !isNode || nn == nil || !sameRouting(o, nn) || (nn.Name == c.own && networkUp(o) != networkUp(nn)) {
		defer c.poke()
	}
	return c.store.Update(n)
}
