//! One actor's life in the simulated runtime: a message delivered, the race
//! to activate it, renewals, saves fenced by the epoch, deactivation (final
//! save or delete, release), and what a rejection means for the node.

use super::*;

impl Runtime<'_> {
    pub(super) fn deliver(&mut self, actor: u32) -> StoreResult {
        if let Some(activation) = self.active.get(&actor) {
            if self.alive[activation.node as usize] {
                return self.handle_message(actor);
            }
        }
        let live: Vec<u32> = (0..self.scenario.nodes)
            .filter(|&node| self.alive[node as usize])
            .collect();
        if live.is_empty() {
            return Ok(()); // The whole cluster is down: the message is lost, not stored.
        }
        let racers = self.pick_racers(&live);
        let mut winner = None;
        let mut held_until = None;
        for node in racers {
            let duration = Duration::from_millis(self.header.lease_ms);
            let result = self.store.try_acquire(
                &self.keys[actor as usize],
                &self.nodes[node as usize],
                duration,
                self.now(),
            )?;
            let answer = answer_of_acquire(&result, &self.nodes);
            self.record(Op::Acquire { actor, node }, answer);
            match result {
                Acquire::Acquired(lease) => winner = Some((node, lease.epoch)),
                Acquire::Held { expires_at, .. } => {
                    self.stats.lease_conflicts += 1;
                    held_until = Some(expires_at.as_millis());
                }
            }
        }
        let Some((node, epoch)) = winner else {
            // Held by a node that is gone: wait for its lease to run out.
            let until = held_until.unwrap_or(self.now_ms);
            self.stats.deferred_messages += 1;
            self.schedule(until + 1, Timer::Deferred { actor });
            return Ok(());
        };
        self.activate(actor, node, epoch)?;
        self.handle_message(actor)
    }

    /// `leases.race` distinct live nodes in random order.
    pub(super) fn pick_racers(&mut self, live: &[u32]) -> Vec<u32> {
        let mut nodes = live.to_vec();
        let race = (self.scenario.leases.race as usize).min(nodes.len());
        for index in 0..race {
            let pick = index + self.rng.below((nodes.len() - index) as u64) as usize;
            nodes.swap(index, pick);
        }
        nodes.truncate(race);
        nodes
    }

    pub(super) fn activate(&mut self, actor: u32, node: u32, epoch: u64) -> StoreResult {
        self.stats.activations += 1;
        if self.orphaned.remove(&actor).is_some() {
            self.stats.takeovers += 1;
        }
        let loaded = self.store.load(&self.keys[actor as usize], self.now())?;
        let expires_at_ms = loaded
            .as_ref()
            .and_then(|snapshot| snapshot.expires_at())
            .map(Timestamp::as_millis);
        if loaded.is_some() {
            self.stats.loads_found += 1;
        } else {
            self.stats.loads_missing += 1;
        }
        self.record(Op::Load { actor }, answer_of_load(loaded.as_ref()));
        let version = loaded.as_ref().map_or(0, |snapshot| snapshot.version);
        self.active.insert(
            actor,
            Activation {
                node,
                epoch,
                version,
                expires_at_ms,
                dirty: 0,
                last_message_ms: self.now_ms,
            },
        );
        let scenario = self.scenario;
        let renew_in = (self.header.lease_ms as f64 * scenario.leases.renew_at) as u64;
        self.schedule(self.now_ms + renew_in.max(1), Timer::Renew { actor, epoch });
        let idle = millis(scenario.lifecycle.idle_timeout_secs);
        self.schedule(self.now_ms + idle, Timer::Idle { actor, epoch });
        if scenario.snapshots.interval_secs > 0.0 {
            let interval = millis(scenario.snapshots.interval_secs);
            self.schedule(self.now_ms + interval, Timer::Snapshot { actor, epoch });
        }
        Ok(())
    }

    pub(super) fn handle_message(&mut self, actor: u32) -> StoreResult {
        let every = self.scenario.snapshots.every_messages;
        let now_ms = self.now_ms;
        let Some(activation) = self.active.get_mut(&actor) else {
            return Ok(());
        };
        activation.dirty += 1;
        activation.last_message_ms = now_ms;
        if every > 0 && activation.dirty >= every {
            self.save(actor)?;
        }
        Ok(())
    }

    pub(super) fn renew(&mut self, actor: u32) -> StoreResult {
        let Some(activation) = self.active.get(&actor) else {
            return Ok(());
        };
        let (node, epoch) = (activation.node, activation.epoch);
        let key = &self.keys[actor as usize];
        let op = Op::Renew { actor, node, epoch };
        match self
            .store
            .renew(key, &self.nodes[node as usize], epoch, self.now())
        {
            Ok(lease) => {
                self.stats.renewals += 1;
                self.record(
                    op,
                    Answer::Renewed {
                        expires_at_ms: lease.expires_at.as_millis(),
                    },
                );
                let renew_in = (self.header.lease_ms as f64 * self.scenario.leases.renew_at) as u64;
                self.schedule(self.now_ms + renew_in.max(1), Timer::Renew { actor, epoch });
                Ok(())
            }
            Err(err) => self.rejected(actor, op, err),
        }
    }

    /// The version the store shows for the actor's snapshot now.
    pub(super) fn visible_version(&self, activation: &Activation) -> u64 {
        match activation.expires_at_ms {
            Some(expires_at_ms) if expires_at_ms <= self.now_ms => 0,
            _ => activation.version,
        }
    }

    pub(super) fn save(&mut self, actor: u32) -> StoreResult {
        let Some(activation) = self.active.get(&actor) else {
            return Ok(());
        };
        let (version, epoch) = (self.visible_version(activation), activation.epoch);
        let state_bytes = self.state_bytes[actor as usize];
        let mut write = SnapshotWrite::new(
            self.keys[actor as usize].clone(),
            self.pool.state(actor, version + 1, state_bytes),
        );
        if self.header.ttl_ms > 0 {
            write = write.with_ttl(Duration::from_millis(self.header.ttl_ms));
        }
        let op = Op::Save {
            actor,
            expected_version: version,
            epoch,
            state_bytes,
        };
        match self.store.save(write, version, epoch, self.now()) {
            Ok(snapshot) => {
                self.stats.saves += 1;
                self.record(
                    op,
                    Answer::Saved {
                        version: snapshot.version,
                    },
                );
                if let Some(activation) = self.active.get_mut(&actor) {
                    activation.version = snapshot.version;
                    activation.expires_at_ms = snapshot.expires_at().map(Timestamp::as_millis);
                    activation.dirty = 0;
                }
                Ok(())
            }
            Err(err) => self.rejected(actor, op, err),
        }
    }

    pub(super) fn deactivate(&mut self, actor: u32) -> StoreResult {
        let Some(activation) = self.active.get(&actor) else {
            return Ok(());
        };
        let (node, epoch, version, dirty) = (
            activation.node,
            activation.epoch,
            self.visible_version(activation),
            activation.dirty,
        );
        let delete = self.scenario.lifecycle.delete_share > 0.0
            && self.rng.chance(self.scenario.lifecycle.delete_share);
        if delete && version > 0 {
            let op = Op::Delete {
                actor,
                expected_version: version,
                epoch,
            };
            match self
                .store
                .delete(&self.keys[actor as usize], version, epoch, self.now())
            {
                Ok(()) => {
                    self.stats.deletes += 1;
                    self.record(op, Answer::Deleted);
                }
                Err(err) => return self.rejected(actor, op, err),
            }
        } else if dirty > 0 {
            self.save(actor)?;
            if !self.active.contains_key(&actor) {
                return Ok(());
            }
        }
        self.active.remove(&actor);
        let op = Op::Release { actor, node, epoch };
        match self.store.release(
            &self.keys[actor as usize],
            &self.nodes[node as usize],
            epoch,
        ) {
            Ok(_) => {
                self.stats.releases += 1;
                self.record(op, Answer::Released);
                Ok(())
            }
            Err(err) => self.rejected(actor, op, err),
        }
    }

    /// A rule rejected a node that followed the protocol: record it, drop the
    /// activation, and count it (the generation tests require none).
    pub(super) fn rejected(&mut self, actor: u32, op: Op, err: StoreError) -> StoreResult {
        let Some(rejection) = rejection(&err) else {
            return Err(err);
        };
        self.stats.unexpected_rejections += 1;
        self.record(op, Answer::Rejected(rejection));
        self.active.remove(&actor);
        Ok(())
    }
}
