package pool

import (
	"context"
	"fmt"
	"time"
)

// Reload replaces every worker with one running freshly imported code: the
// new workers start (with Preload, from a new zygote), and once all of them
// are ready the old ones stop taking requests, finish those they hold and
// exit. If the new code cannot be imported, the old workers keep serving
// and the error is returned; every failure is also logged (once, here).
func (p *Pool) Reload(ctx context.Context) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	p.mu.Lock()
	target := p.target
	var oldZygote *worker // with Preload the zygote holds the old code
	if p.cfg.Preload {
		oldZygote = p.zygote
	}
	p.mu.Unlock()
	p.cfg.ErrorLog.Printf("reloading: starting %d workers with fresh code", target)

	var zygote *worker // with Preload: the new zygote, current once the reload succeeded
	if p.cfg.Preload {
		z, err := startZygote(p)
		if err != nil {
			err = fmt.Errorf("reload: %w", err)
			p.cfg.ErrorLog.Printf("error: reload failed, the old workers keep serving: %v", err)
			return err
		}
		select {
		case <-z.ready:
		case <-z.exited:
			err := &StartError{App: p.cfg.App, Status: "(zygote) " + z.exitStatus, Output: z.startOutput()}
			p.cfg.ErrorLog.Printf("error: reload failed, the old workers keep serving: %v", err)
			return err
		case <-ctx.Done():
			z.kill()
			err := fmt.Errorf("reload: %w", ctx.Err())
			p.cfg.ErrorLog.Printf("error: reload failed, the old workers keep serving: %v", err)
			return err
		}
		zygote = z
	}

	var fresh []*worker
	for slot := 0; slot < target; slot++ {
		w, err := p.spawnAs(ctx, slot, true, zygote)
		if err != nil {
			p.mu.Lock()
			for _, n := range fresh {
				p.drainLocked(n)
			}
			p.mu.Unlock()
			if zygote != nil {
				// It goes once the workers it forked have (it reports
				// their exits until then).
				go p.retireZygote(zygote)
			}
			p.cfg.ErrorLog.Printf("error: reload failed, the old workers keep serving: %v", err)
			return err
		}
		fresh = append(fresh, w)
	}
	// Each new worker supersedes the workers of its slot. One that died
	// meanwhile supersedes nothing: its slot keeps the worker it has.
	// Workers started from now on are forked by the new zygote.
	p.mu.Lock()
	if zygote != nil {
		p.zygote = zygote
	}
	for _, w := range fresh {
		if w.state == stateReady {
			p.activateLocked(w, "reload")
		}
	}
	p.mu.Unlock()
	if oldZygote != nil {
		go p.retireZygote(oldZygote)
	}
	p.cfg.ErrorLog.Printf("reloaded: %d workers run the new code", len(fresh))
	return nil
}

// retireZygote stops an old zygote once every worker it forked is gone
// (it reports their exits until then), including any it forked while the
// reload was under way.
func (p *Pool) retireZygote(z *worker) {
	for {
		var forked []*worker
		p.mu.Lock()
		for _, w := range p.forked {
			if w.parent == z {
				forked = append(forked, w)
			}
		}
		p.mu.Unlock()
		if len(forked) == 0 {
			z.shutdown()
			return
		}
		for _, w := range forked {
			select {
			case <-w.exited:
			case <-p.done:
				z.shutdown()
				return
			}
		}
	}
}

// Scale adds (delta > 0) or retires (delta < 0) workers, one at a time. It
// returns the new number of workers wanted; the pool never drops below one.
func (p *Pool) Scale(ctx context.Context, delta int) (int, error) {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	for ; delta > 0; delta-- {
		p.mu.Lock()
		slot := p.target
		p.target++
		if len(p.slots) < p.target {
			p.slots = append(p.slots, slotInfo{})
		}
		p.mu.Unlock()
		p.cfg.ErrorLog.Printf("scaling up: starting worker slot %d", slot+1)
		if _, err := p.spawn(ctx, slot); err != nil {
			p.mu.Lock()
			p.target--
			p.mu.Unlock()
			return p.Target(), err
		}
	}
	for ; delta < 0; delta++ {
		p.mu.Lock()
		if p.target <= 1 {
			p.mu.Unlock()
			p.cfg.ErrorLog.Printf("warning: not scaling down: one worker is the minimum")
			break
		}
		p.target--
		for _, w := range p.workers {
			if w.slot == p.target && w.state == stateReady {
				p.cfg.ErrorLog.Printf("retiring worker %d (slot %d): scaling down", w.pid, w.slot+1)
				p.drainLocked(w)
			}
		}
		p.mu.Unlock()
	}
	return p.Target(), nil
}

// Target returns the number of workers the pool keeps running.
func (p *Pool) Target() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// Ready returns the number of workers taking requests.
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.workers {
		if w.state == stateReady {
			n++
		}
	}
	return n
}

// watchMemory recycles workers whose RSS passes MaxWorkerMemory.
func (p *Pool) watchMemory() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		var over []*worker
		for _, w := range p.workers {
			if w.state == stateReady && !p.slots[w.slot].retiring {
				over = append(over, w)
			}
		}
		p.mu.Unlock()
		for _, w := range over {
			r := rss(w.pid)
			if r <= p.cfg.MaxWorkerMemory {
				continue
			}
			p.mu.Lock()
			p.recycleLocked(w, fmt.Sprintf("its RSS %d MiB is over --max-worker-memory %d MiB", r>>20, p.cfg.MaxWorkerMemory>>20))
			p.mu.Unlock()
		}
	}
}
