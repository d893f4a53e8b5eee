//! One delivery attempt of one queued message: expand its recipients, hand each to a courier,
//! record every outcome durably as soon as it is known, queue the DSNs that are due, then
//! remove the message or schedule the next attempt.
//!
//! Crash safety: a recipient's state is written (tf, fsync, rename) right after its delivery,
//! so a restart repeats at most the delivery that was in flight. DSNs are queued before the
//! state that says they were sent, so a crash can duplicate a notice but never lose one.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::courier::remote::{Relay, Remote, RemoteJob, RemoteRcpt, RemoteSettings};
use crate::courier::{Outcome, local, program};
use crate::dns::Dns;
use crate::maps::aliases::{self, ExpandOptions};
use crate::policy::Policy;
use crate::route::Route;

use super::dsn::{self, Entry, Kind};
use super::{Envelope, Incoming, NewMessage, QueueId, RcptState, Recipient, Spool, SpoolError};
use crate::content::Content;
use crate::stage::Stage;

/// What an attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Another runner holds the message.
    Busy,
    /// Held (`mailtool queue hold`).
    Held,
    /// Not due before this time (unix seconds); only without `force`.
    NotDue(u64),
    /// Every recipient is done and the message left the queue. `notices`: DSNs queued.
    Done { notices: Vec<QueueId> },
    /// Some recipients wait; the next attempt is due then (unix seconds).
    Deferred { next: u64, notices: Vec<QueueId> },
}

/// Where an expanded recipient goes (the `TARGET` of its qf record).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Local(String),
    File(String),
    Program(String),
    Remote(String),
}

impl Expanded {
    fn max_with(self, other: Expanded) -> Expanded {
        match (self, other) {
            (Expanded::Lists, _) | (_, Expanded::Lists) => Expanded::Lists,
            (Expanded::Routes, _) | (_, Expanded::Routes) => Expanded::Routes,
            _ => Expanded::Nothing,
        }
    }
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        let (kind, v) = s.split_once(':')?;
        Some(match kind {
            "local" => Target::Local(v.into()),
            "file" => Target::File(v.into()),
            "prog" => Target::Program(v.into()),
            "remote" => Target::Remote(v.into()),
            _ => return None,
        })
    }

    pub fn encode(&self) -> String {
        match self {
            Target::Local(v) => format!("local:{v}"),
            Target::File(v) => format!("file:{v}"),
            Target::Program(v) => format!("prog:{v}"),
            Target::Remote(v) => format!("remote:{v}"),
        }
    }

    fn mailer(&self) -> &'static str {
        match self {
            Target::Local(_) => "local",
            Target::File(_) => "*file*",
            Target::Program(_) => "prog",
            Target::Remote(_) => "esmtp",
        }
    }
}

/// One courier call of an attempt.
enum Job {
    Local(usize, Target),
    Remote(String, Vec<usize>),
}

/// What expansion changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expanded {
    Nothing,
    /// Only one-to-one routes were filled in.
    Routes,
    /// Lists were expanded or recipients failed: the recipient list itself changed.
    Lists,
}

/// The delivery engine shared by the runner's tasks.
pub struct Engine {
    pub spool: Arc<Spool>,
    config: RwLock<Arc<Config>>,
    policy: Arc<Policy>,
    remote: RwLock<Arc<Remote>>,
    dns: Dns,
    /// The message stage (DKIM keys, `[verify]`): the SMTP server's, the client spool's
    /// import and the notices written here share it.
    stage: RwLock<Arc<Stage>>,
}

use crate::sys::unix_now as now_secs;

fn remote_for(cfg: &Config, dns: Dns) -> Result<Remote, crate::tls::TlsError> {
    let q = &cfg.settings.queue;
    let smart_host = if q.smart_host.trim().is_empty() {
        None
    } else {
        let (h, p) = crate::smtp::client::split_host_port(q.smart_host.trim(), 25)
            .map_err(crate::tls::TlsError::Config)?;
        Some((
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p,
        ))
    };
    Ok(Remote::new(
        RemoteSettings {
            hostname: cfg.hostname(),
            smart_host,
            port: q.remote_port,
            connect_timeout: Duration::from_secs(30),
            command_timeout: cfg
                .settings
                .smtp
                .command_timeout
                .0
                .max(Duration::from_secs(30)),
            per_destination: q.max_per_destination,
            tls: crate::tls::client_config(&crate::tls::Verify::Nothing)?,
        },
        dns,
    ))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(SpoolError::Internal))
}

/// What the first blocking step of an attempt found.
enum Start {
    Skip(Attempt),
    Go(Box<(super::MessageLock, Envelope, Content)>),
}

impl Engine {
    /// An engine with its own policy over the configured maps (`mailtool queue run`).
    pub fn standalone(
        cfg: Config,
        spool: Arc<Spool>,
        dns: Dns,
        stage: Arc<Stage>,
    ) -> Result<Engine, crate::tls::TlsError> {
        let policy = Arc::new(Policy::new(&cfg));
        Engine::new(cfg, spool, dns, policy, stage)
    }

    /// An engine routing through `policy`, the server's (`serve`: [`crate::server::app`]).
    pub fn new(
        cfg: Config,
        spool: Arc<Spool>,
        dns: Dns,
        policy: Arc<Policy>,
        stage: Arc<Stage>,
    ) -> Result<Engine, crate::tls::TlsError> {
        let remote = remote_for(&cfg, dns.clone())?;
        Ok(Engine {
            spool,
            policy,
            stage: RwLock::new(stage),
            config: RwLock::new(Arc::new(cfg)),
            remote: RwLock::new(Arc::new(remote)),
            dns,
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The message stage.
    pub fn stage(&self) -> Arc<Stage> {
        self.stage.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGHUP: new settings for the next attempts (the policy is reloaded by its owner), and
    /// the DKIM keys read again; a key that cannot be read keeps the old stage.
    pub fn reload(&self, cfg: Config) {
        match remote_for(&cfg, self.dns.clone()) {
            Ok(r) => *self.remote.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r),
            Err(e) => tracing::error!("queue: keeping the old outbound settings: {e}"),
        }
        match Stage::load(&cfg) {
            Ok(st) => *self.stage.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(st),
            Err(e) => tracing::error!("SIGHUP: keeping the old DKIM keys and [verify]: {e}"),
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg);
    }

    fn remote(&self) -> Arc<Remote> {
        self.remote
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tries to deliver `id` now. `force` ignores the retry schedule and holds.
    pub async fn attempt(&self, id: &QueueId, force: bool) -> Result<Attempt, SpoolError> {
        let spool = self.spool.clone();
        let idc = id.clone();
        let data_path = self.spool.data_path(id);
        let path = data_path.clone();
        let now = now_secs();
        // Lock, envelope and (when due) the data in one trip to a blocking thread, not four.
        let start = blocking(move || {
            let Some(lock) = spool.try_lock(&idc)? else {
                return Ok(Start::Skip(Attempt::Busy));
            };
            let env = spool.read_envelope(&idc)?;
            if env.held && !force {
                return Ok(Start::Skip(Attempt::Held));
            }
            if let Some(next) = env.next_attempt
                && next > now
                && !force
            {
                return Ok(Start::Skip(Attempt::NotDue(next)));
            }
            // Small messages are read once into memory; larger ones are streamed from the df
            // by every courier, so memory stays bounded whatever the size.
            let data = Content::load(&path, crate::content::CHUNK as u64)
                .map_err(|e| SpoolError::io("read", &path, e))?
                .with_prefix(env.headers.concat().as_bytes());
            Ok(Start::Go(Box::new((lock, env, data))))
        })
        .await?;
        let (lock, env, data) = match start {
            Start::Skip(a) => return Ok(a),
            Start::Go(b) => *b,
        };
        let mut eight_bit: Option<bool> = None;
        let cfg = self.config();

        // 1. Expansion. A list's members are recorded before any delivery, so a restart
        // delivers to the same set and skips those already done; a plain one-to-one route is
        // simply computed again after a crash, which saves a sync per message.
        let mut env = env;
        if self.expand(id, &mut env) == Expanded::Lists {
            env = self.save(id, &env).await?;
        }

        // 2. Deliveries: local ones one by one, remote ones grouped by domain. Outcomes are
        // written after each job while more jobs follow; the last one is written with the
        // final state below (or the message is removed).
        let mut jobs: Vec<Job> = Vec::new();
        let mut remote_groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in env.recipients.iter().enumerate() {
            if r.state != RcptState::Pending {
                continue;
            }
            match r.target.as_deref().and_then(Target::parse) {
                Some(Target::Remote(addr)) => {
                    let domain = addr
                        .rsplit_once('@')
                        .map_or("", |(_, d)| d)
                        .to_ascii_lowercase();
                    remote_groups.entry(domain).or_default().push(i);
                }
                Some(t) => jobs.push(Job::Local(i, t)),
                None => {}
            }
        }
        jobs.extend(
            remote_groups
                .into_iter()
                .map(|(d, idx)| Job::Remote(d, idx)),
        );
        let remote = self.remote();
        let njobs = jobs.len();
        for (k, job) in jobs.into_iter().enumerate() {
            match job {
                Job::Local(i, target) => {
                    let r = &env.recipients[i];
                    let rcpt = r.parent.clone().unwrap_or_else(|| r.address.clone());
                    let out = self
                        .deliver_local(&cfg, &target, &env.sender, &rcpt, &data)
                        .await;
                    self.log(id, &env, &[i], &target, None, std::slice::from_ref(&out));
                    apply(&mut env, &[i], &[out]);
                }
                Job::Remote(domain, idx) => {
                    let eight_bit = match eight_bit {
                        Some(b) => b,
                        None => {
                            let d = data.clone();
                            let path = data_path.clone();
                            let b = blocking(move || {
                                d.has_8bit().map_err(|e| SpoolError::io("read", &path, e))
                            })
                            .await?;
                            *eight_bit.insert(b)
                        }
                    };
                    let job = RemoteJob {
                        sender: &env.sender,
                        rcpts: idx
                            .iter()
                            .map(|&i| {
                                let r = &env.recipients[i];
                                RemoteRcpt {
                                    address: match r.target.as_deref().and_then(Target::parse) {
                                        Some(Target::Remote(a)) => a,
                                        _ => r.address.clone(),
                                    },
                                    notify: r.notify,
                                    orcpt: r.orcpt.clone(),
                                }
                            })
                            .collect(),
                        data: &data,
                        eight_bit,
                        smtputf8: env.smtputf8,
                        ret: env.ret,
                        envid: env.envid.as_deref(),
                    };
                    let d = remote.deliver(&domain, &job).await;
                    let target = Target::Remote(domain.clone());
                    self.log(id, &env, &idx, &target, d.relay.as_ref(), &d.outcomes);
                    apply(&mut env, &idx, &d.outcomes);
                    for &i in &idx {
                        let r = &mut env.recipients[i];
                        r.remote_mta = d.relay.as_ref().map(|x| x.host.clone());
                        // RFC 3461 §5.2.1: NOTIFY went on to a next hop that offers DSN; the
                        // success notice is its to send, not ours.
                        if d.relay.as_ref().is_some_and(|x| x.dsn) && r.state == RcptState::Sent {
                            r.notified = true;
                        }
                    }
                }
            }
            if k + 1 < njobs {
                env = self.save(id, &env).await?;
            }
        }

        // 3. Time limits and notices.
        let q = &cfg.settings.queue;
        let age = now.saturating_sub(env.created);
        if age >= q.return_after.0.as_secs() && !q.return_after.is_zero() {
            let why = format!(
                "4.4.7 Message could not be delivered for {}",
                crate::duration::describe(q.return_after.0)
            );
            for r in env
                .recipients
                .iter_mut()
                .filter(|r| r.state == RcptState::Pending)
            {
                let last = r.status.clone().unwrap_or_default();
                r.state = RcptState::Failed;
                r.status = Some(format!("{why} ({last})"));
            }
        }
        let mut notices = Vec::new();
        let host = cfg.hostname();
        for kind in [Kind::Failure, Kind::Success] {
            let state = if kind == Kind::Failure {
                RcptState::Failed
            } else {
                RcptState::Sent
            };
            let due: Vec<usize> = (0..env.recipients.len())
                .filter(|&i| {
                    let r = &env.recipients[i];
                    r.state == state && !r.notified
                })
                .collect();
            if due.is_empty() {
                continue;
            }
            let wanted: Vec<usize> = due
                .iter()
                .copied()
                .filter(|&i| dsn::wanted(&env.recipients[i], kind))
                .collect();
            if !wanted.is_empty() {
                notices.extend(self.notify(id, kind, &env, &wanted, &data, &host).await?);
            }
            for i in due {
                env.recipients[i].notified = true;
            }
        }
        let pending: Vec<usize> = (0..env.recipients.len())
            .filter(|&i| env.recipients[i].state == RcptState::Pending)
            .collect();
        if !pending.is_empty()
            && !env.warning_sent
            && !q.warn_after.is_zero()
            && age >= q.warn_after.0.as_secs()
        {
            let wanted: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|&i| dsn::wanted(&env.recipients[i], Kind::Delay))
                .collect();
            if !wanted.is_empty() {
                notices.extend(
                    self.notify(id, Kind::Delay, &env, &wanted, &data, &host)
                        .await?,
                );
            }
            env.warning_sent = true;
        }

        // 4. Done, or when to try again.
        if pending.is_empty() {
            let spool = self.spool.clone();
            let idc = id.clone();
            blocking(move || spool.remove(&idc)).await?;
            tracing::info!("{id}: done");
            drop(lock);
            return Ok(Attempt::Done { notices });
        }
        env.tries = env.tries.saturating_add(1);
        env.last_attempt = now;
        let next = now + backoff(env.tries, q.min_backoff.0, q.max_backoff.0).as_secs();
        env.next_attempt = Some(next);
        env.status_message = pending
            .first()
            .and_then(|&i| env.recipients[i].status.clone());
        self.save(id, &env).await?;
        drop(lock);
        Ok(Attempt::Deferred { next, notices })
    }

    /// Writes the envelope back (the runner holds the message lock).
    async fn save(&self, id: &QueueId, env: &Envelope) -> Result<Envelope, SpoolError> {
        let spool = self.spool.clone();
        let idc = id.clone();
        let new = env.clone();
        blocking(move || spool.update(&idc, move |e| *e = new)).await
    }

    /// Queues a DSN from `<>`; none for the null sender (a bounce is never bounced).
    async fn notify(
        &self,
        id: &QueueId,
        kind: Kind,
        env: &Envelope,
        idx: &[usize],
        data: &Content,
        host: &str,
    ) -> Result<Vec<QueueId>, SpoolError> {
        let cfg = self.config();
        let entries: Vec<Entry<'_>> = idx
            .iter()
            .map(|&i| Entry {
                recipient: &env.recipients[i],
                diagnostic: env.recipients[i].status.as_deref().unwrap_or(""),
            })
            .collect();
        let Some(notice) = dsn::build(
            kind,
            env,
            &entries,
            host,
            SystemTime::now(),
            cfg.settings.queue.warn_after.0,
        ) else {
            if env.sender.is_empty() && kind == Kind::Failure {
                tracing::warn!("{id}: bounce of a bounce not sent (null sender)");
            }
            return Ok(Vec::new());
        };
        let mut rcpts = vec![super::Recipient::new(notice.to.clone())];
        if cfg.settings.queue.postmaster_copy && kind == Kind::Failure {
            rcpts.push(super::Recipient::new("postmaster"));
        }
        let mut e = Envelope::new("", rcpts);
        e.protocol = Some("local".into());
        let spool = self.spool.clone();
        let original = data.clone();
        let to = notice.to.clone();
        let oid = id.clone();
        let stage = self.stage();
        let nid = blocking(move || {
            // Streamed into its own df like a received message: a bounce that returns a large
            // original costs no more memory than a small one.
            let nid = QueueId::allocate();
            let mut incoming = Incoming::new(nid.clone(), spool.data_path(&nid));
            let mut failed = None;
            let read = notice.write(&original, |piece| {
                incoming.push(piece);
                if incoming.wants_flush()
                    && let Err(e) = incoming.flush()
                {
                    failed = Some(e);
                    return Err(std::io::Error::other("spool write failed"));
                }
                Ok(())
            });
            if let Some(e) = failed {
                return Err(e);
            }
            read.map_err(|e| SpoolError::io("read", &spool.data_path(&oid), e))?;
            let head = incoming.head().to_vec();
            let data = incoming.finish()?;
            stage.local(&nid, &data, &head, &mut e);
            spool.store(NewMessage {
                envelope: e,
                data,
                id: Some(nid),
            })
        })
        .await?;
        tracing::info!("{id}: {nid}: DSN: {:?} notice to <{to}>", kind);
        Ok(vec![nid])
    }

    /// Resolves every pending recipient that has no target yet.
    fn expand(&self, id: &QueueId, env: &mut Envelope) -> Expanded {
        let mut changed = Expanded::Nothing;
        let mut out: Vec<Recipient> = Vec::with_capacity(env.recipients.len());
        let mut seen: HashSet<Target> = env
            .recipients
            .iter()
            .filter_map(|r| r.target.as_deref().and_then(Target::parse))
            .collect();
        for r in std::mem::take(&mut env.recipients) {
            if r.state != RcptState::Pending || r.target.is_some() {
                out.push(r);
                continue;
            }
            changed = changed.max_with(Expanded::Routes);
            let top = r.parent.clone().unwrap_or_else(|| r.address.clone());
            let mut children = Vec::new();
            let mut failures = Vec::new();
            let mut work = vec![(r.address.clone(), 0usize)];
            let mut deferred = None;
            while let Some((addr, depth)) = work.pop() {
                if depth > aliases::MAX_ALIAS_RECURSION {
                    failures.push((
                        addr,
                        aliases::loop_reply(depth, aliases::MAX_ALIAS_RECURSION).to_string(),
                    ));
                    continue;
                }
                match self.policy.route(&addr) {
                    Err(e) => deferred = Some(format!("Deferred: map lookup failed: {e}")),
                    Ok(Route::Reject(reply)) => failures.push((addr, reply.to_string())),
                    Ok(Route::Remote(a)) => children.push(Target::Remote(a)),
                    Ok(Route::Local(name)) => {
                        let include = |path: &str| {
                            std::fs::read_to_string(path).map_err(|e| crate::util::io_message(&e))
                        };
                        match aliases::expand(
                            &self.policy.aliases,
                            &name,
                            ExpandOptions::default(),
                            &include,
                        ) {
                            Err(e) => deferred = Some(format!("Deferred: aliases: {e}")),
                            Ok(x) => {
                                for f in x.failures {
                                    failures.push((f.address, f.reply.to_string()));
                                }
                                for t in x.recipients {
                                    match t {
                                        // A name an alias leads to must exist, as RCPT and
                                        // -bv require: never a mailbox for an unknown name.
                                        aliases::Recipient::Local(u) => {
                                            match self.policy.route(&u) {
                                                Err(e) => {
                                                    deferred = Some(format!(
                                                        "Deferred: map lookup failed: {e}"
                                                    ))
                                                }
                                                Ok(Route::Reject(reply)) => {
                                                    failures.push((u, reply.to_string()))
                                                }
                                                Ok(_) => children.push(Target::Local(u)),
                                            }
                                        }
                                        aliases::Recipient::File(p) => {
                                            children.push(Target::File(p))
                                        }
                                        aliases::Recipient::Program(c) => {
                                            children.push(Target::Program(c))
                                        }
                                        // A list member elsewhere may still be one of our
                                        // virtual addresses: route it again.
                                        aliases::Recipient::Remote(a) => work.push((a, depth + 1)),
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Some(why) = deferred {
                let mut r = r;
                r.status = Some(why);
                out.push(r);
                continue;
            }
            if children.is_empty() && failures.len() == 1 {
                // Refused outright (say the user was removed since RCPT): fail it in place.
                let mut r = r;
                r.state = RcptState::Failed;
                r.status = failures.pop().map(|(_, reply)| reply);
                out.push(r);
                continue;
            }
            let single = children.len() == 1 && failures.is_empty();
            if single {
                let t = children.pop().unwrap_or(Target::Local(String::new()));
                let mut r = r;
                if !seen.insert(t.clone()) {
                    // Another recipient already goes there: one copy per mailbox, as sendmail
                    // and Postfix deliver (recorded, so a restart does not deliver it either).
                    changed = Expanded::Lists;
                    let to = display(&t);
                    tracing::info!(
                        "{id}: to=<{}>: duplicate of another recipient ({to}), suppressed",
                        r.address
                    );
                    r.state = RcptState::Sent;
                    r.status = Some(format!("Sent (duplicate, delivered once to {to})"));
                }
                r.target = Some(t.encode());
                out.push(r);
                continue;
            }
            // A list: the parent is done, its members carry on with its DSN parameters.
            changed = Expanded::Lists;
            let mut parent = r.clone();
            parent.state = RcptState::Sent;
            parent.notified = true;
            parent.status = Some(format!(
                "Sent (expanded to {} recipients)",
                children.len() + failures.len()
            ));
            out.push(parent);
            for t in children {
                if !seen.insert(t.clone()) {
                    continue; // each final recipient gets one copy
                }
                out.push(Recipient {
                    address: display(&t),
                    notify: r.notify,
                    orcpt: r.orcpt.clone(),
                    target: Some(t.encode()),
                    parent: Some(top.clone()),
                    ..Recipient::default()
                });
            }
            for (addr, reply) in failures {
                out.push(Recipient {
                    address: addr,
                    notify: r.notify,
                    orcpt: r.orcpt.clone(),
                    state: RcptState::Failed,
                    status: Some(reply),
                    parent: Some(top.clone()),
                    ..Recipient::default()
                });
            }
        }
        env.recipients = out;
        changed
    }

    async fn deliver_local(
        &self,
        cfg: &Config,
        target: &Target,
        sender: &str,
        rcpt: &str,
        data: &Content,
    ) -> Outcome {
        let q = &cfg.settings.queue;
        match target {
            Target::Program(cmd) => {
                program::deliver(cmd, data, sender, rcpt, q.program_timeout.0).await
            }
            Target::Local(user) => {
                let opts = local::Options::from_config(cfg);
                local::mailbox(opts, user.clone(), sender.to_string(), data.clone()).await
            }
            Target::File(path) => {
                let opts = local::Options::from_config(cfg);
                local::file(opts, PathBuf::from(path), sender.to_string(), data.clone()).await
            }
            Target::Remote(_) => Outcome::Deferred("Deferred: internal routing error".into()),
        }
    }

    fn log(
        &self,
        id: &QueueId,
        env: &Envelope,
        idx: &[usize],
        target: &Target,
        relay: Option<&Relay>,
        outs: &[Outcome],
    ) {
        let delay = now_secs().saturating_sub(env.created);
        let delay = format!(
            "{:02}:{:02}:{:02}",
            delay / 3600,
            delay / 60 % 60,
            delay % 60
        );
        for (&i, o) in idx.iter().zip(outs) {
            let r = &env.recipients[i];
            let ctl = r
                .parent
                .as_deref()
                .map(|p| format!(", ctladdr=<{p}>"))
                .unwrap_or_default();
            let dsn = dsn::status_of(
                o.text(),
                match o {
                    Outcome::Sent(_) => Kind::Success,
                    Outcome::Deferred(_) => Kind::Delay,
                    Outcome::Failed(_) => Kind::Failure,
                },
            );
            // The server that answered, as Postfix logs it (`host[ip]:port`), or `none`.
            let relay = match (target, relay) {
                (Target::Remote(_), Some(x)) => format!(", relay={}", x.display()),
                (Target::Remote(_), None) => ", relay=none".to_string(),
                _ => String::new(),
            };
            let status = match o {
                Outcome::Sent(_) => "sent",
                Outcome::Deferred(_) => "deferred",
                Outcome::Failed(_) => "bounced",
            };
            crate::metrics::delivery(target.mailer(), status);
            if status != "deferred" {
                crate::metrics::delivery_time(now_secs().saturating_sub(env.created) as f64);
            }
            tracing::info!(
                "{id}: to=<{}>{ctl}, delay={delay}, mailer={}{relay}, dsn={dsn}, stat={}",
                r.address,
                target.mailer(),
                o.text()
            );
        }
    }
}

fn display(t: &Target) -> String {
    match t {
        Target::Local(u) => u.clone(),
        Target::File(p) => p.clone(),
        Target::Program(c) => format!("|{c}"),
        Target::Remote(a) => a.clone(),
    }
}

/// Records outcomes on the recipients at `idx`.
fn apply(env: &mut Envelope, idx: &[usize], outs: &[Outcome]) {
    for (&i, o) in idx.iter().zip(outs) {
        let r = &mut env.recipients[i];
        match o {
            Outcome::Sent(s) => {
                r.state = RcptState::Sent;
                r.status = Some(s.clone());
            }
            Outcome::Deferred(s) => r.status = Some(s.clone()),
            Outcome::Failed(s) => {
                r.state = RcptState::Failed;
                r.status = Some(s.clone());
            }
        }
    }
}

/// Exponential backoff: `min`, then doubling, at most `max`.
pub fn backoff(tries: u32, min: Duration, max: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(tries.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_and_backoff_grows_to_its_cap() {
        for t in [
            Target::Local("bob".into()),
            Target::File("/var/log/x".into()),
            Target::Program("/usr/bin/procmail -a x:y".into()),
            Target::Remote("a@b".into()),
        ] {
            assert_eq!(Target::parse(&t.encode()), Some(t));
        }
        assert_eq!(Target::parse("nope"), None);
        let (m, x) = (Duration::from_secs(300), Duration::from_secs(3600));
        assert_eq!(backoff(1, m, x), m);
        assert_eq!(backoff(2, m, x), Duration::from_secs(600));
        assert_eq!(backoff(4, m, x), Duration::from_secs(2400));
        assert_eq!(backoff(5, m, x), x);
        assert_eq!(backoff(400, m, x), x);
    }
}
