// A broken or hostile master, and the failures of a real one: every case ends in a typed error
// with its context, or in a retry that recovers, never in a hang or a silent loss. The bytes a
// real master sends are damaged on their way by a tampering proxy (a flipped RDB byte, a wrong
// length, a wrong end mark, garbage in the stream or instead of the PSYNC reply); real servers
// answer -LOADING, -NOMASTERLINK, refuse credentials, freeze and stay silent.
import { spawnRedis, startProxy, waitFor } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { RdbError, ReplicaListener, type ReplicationEvent, ReplicationLinkError } from '../src/index.ts';
import { expectContiguous, Recorder, TamperProxy } from './live-helpers.ts';
import { noise } from './server-dataset.ts';

/** Runs a listener until it fails; returns the events before the failure and the error. */
async function failure(listener: ReplicaListener): Promise<{ events: ReplicationEvent[]; error: Error }> {
  const events: ReplicationEvent[] = [];
  try {
    for await (const event of listener) events.push(event);
  } catch (error) {
    return { events, error: error as Error };
  }
  throw new Error(`the listener ended without an error after ${events.map((e) => e.kind).join(', ')}`);
}

/** Where the RDB starts in bytes held from `+FULLRESYNC`: after that line and the `$...` header line. */
function rdbStart(held: Buffer): number {
  const reply = held.indexOf('\r\n') + 2;
  let at = reply;
  while (held[at] === 0x0a) at++; // keep-alives
  return held.indexOf('\r\n', at) + 2;
}

describe('a broken master', () => {
  it('a damaged byte in the snapshot: ERR_RDB_CHECKSUM after the events before it, no retry', async () => {
    await using master = await spawnRedis({ config: { 'repl-diskless-sync': 'no' } });
    const client = master.createClient({ protocol: 2 });
    await client.set('a-first-key', 'ok');
    const big = noise(20_000, 3); // does not compress: it is in the RDB as it is
    await client.set('big', big);
    await using proxy = await TamperProxy.start(master);
    proxy.tamper({
      from: '+FULLRESYNC',
      until: (held) => held.includes(big),
      edit: (held) => {
        const copy = Buffer.from(held);
        const at = held.indexOf(big) + 10_000;
        copy[at] = (copy[at] as number) ^ 0xff; // still a valid RDB, with a wrong checksum
        return copy;
      },
    });
    const { events, error } = await failure(new ReplicaListener({ port: proxy.port, rdb: { maxPartBytes: 4096 } }));
    expect(error).toBeInstanceOf(RdbError);
    expect(error).toMatchObject({ code: 'ERR_RDB_CHECKSUM' });
    expect(events.map((e) => e.kind)).not.toContain('reconnecting');
    expect(events.map((e) => e.kind)).not.toContain('snapshot-done');
    // The entries read before the damage were delivered, the damaged one in parts.
    expect(events.filter((e) => e.kind === 'entry').map((e) => e.key.toString())).toContain('a-first-key');
  });

  it('a wrong end mark on a diskless snapshot: ERR_REPLICATION_PROTOCOL', async () => {
    await using master = await spawnRedis({ config: { 'repl-diskless-sync': 'yes' } });
    await master.createClient({ protocol: 2 }).set('k', 'v');
    await using proxy = await TamperProxy.start(master);
    proxy.tamper({
      from: '+FULLRESYNC',
      until: (held) => {
        const header = held.indexOf('$EOF:');
        if (header < 0) return false;
        const mark = held.subarray(header + 5, header + 45);
        return held.indexOf(mark, header + 45) > 0;
      },
      edit: (held) => {
        const copy = Buffer.from(held);
        copy[copy.length - 1] = copy[copy.length - 1] === 0x30 ? 0x31 : 0x30;
        return copy;
      },
    });
    const { error } = await failure(new ReplicaListener({ port: proxy.port }));
    expect(error).toBeInstanceOf(ReplicationLinkError);
    expect(error).toMatchObject({ code: 'ERR_REPLICATION_PROTOCOL', phase: 'transfer' });
    expect(error.message).toMatch(/EOF mark/);
  });

  for (const delta of [+10, -10]) {
    it(`a snapshot length ${delta > 0 ? 'longer' : 'shorter'} than the RDB: a typed error, no hang`, async () => {
      await using master = await spawnRedis({ config: { 'repl-diskless-sync': 'no' } });
      await master.createClient({ protocol: 2 }).set('k', 'v'.repeat(100));
      await using proxy = await TamperProxy.start(master);
      proxy.tamper({
        from: '+FULLRESYNC',
        until: (held) => {
          const start = rdbStart(held);
          return start > 2 && held.length >= start + Number(/\$(\d+)\r\n/.exec(held.toString('latin1'))?.[1]);
        },
        edit: (held) => {
          const text = held.toString('latin1');
          const length = Number(/\$(\d+)\r\n/.exec(text)?.[1]);
          return Buffer.from(text.replace(`$${length}\r\n`, `$${length + delta}\r\n`), 'latin1');
        },
      });
      const { error } = await failure(new ReplicaListener({ port: proxy.port, readTimeout: 5000 }));
      if (delta > 0) {
        expect(error).toMatchObject({ code: 'ERR_REPLICATION_PROTOCOL' });
        expect(error.message).toMatch(/ended 10 bytes before the announced length/);
      } else {
        expect(error).toBeInstanceOf(RdbError);
        expect(error).toMatchObject({ code: 'ERR_RDB_TRUNCATED' });
      }
    });
  }

  it('garbage in the command stream: ERR_REPLICATION_PROTOCOL after the commands before it', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    await using proxy = await TamperProxy.start(master);
    const listener = new ReplicaListener({ port: proxy.port });
    const seen: ReplicationEvent[] = [];
    const failed = (async () => {
      try {
        for await (const event of listener) {
          seen.push(event);
          if (event.kind === 'snapshot-done') await client.set('good', '1');
          if (event.kind === 'command' && event.name === 'SET') proxy.inject(Buffer.from('$5\r\nhello\r\n'));
        }
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    const error = await failed;
    expect(error).toMatchObject({ code: 'ERR_REPLICATION_PROTOCOL', phase: 'stream' });
    expect(error?.message).toMatch(/bulk|Buffer|where a command/);
    expect(seen.filter((e) => e.kind === 'command').map((e) => e.name)).toContain('SET');
    expect(listener.status).toBe('closed');
  });

  it('garbage instead of the PSYNC reply: ERR_REPLICATION_PROTOCOL', async () => {
    await using master = await spawnRedis();
    await using proxy = await TamperProxy.start(master);
    proxy.tamper({
      from: '+FULLRESYNC',
      until: () => true,
      edit: () => Buffer.from('+HELLO there\r\n'),
    });
    const { error } = await failure(new ReplicaListener({ port: proxy.port }));
    expect(error).toMatchObject({ code: 'ERR_REPLICATION_PROTOCOL', phase: 'psync' });
    expect(error.message).toContain('"+HELLO there"');
  });

  it('a master that accepts and says nothing: the first connection fails within connectTimeout, naming the master', async () => {
    await using master = await spawnRedis();
    await using proxy = await startProxy({ target: master });
    proxy.pause();
    const listener = new ReplicaListener({
      port: proxy.port,
      connectTimeout: 600,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    const { events, error } = await failure(listener);
    // The TCP connection opens (to the proxy), then PING gets no answer: the whole bound goes to one attempt.
    expect(error).toBeInstanceOf(ReplicationLinkError);
    expect(error).toMatchObject({
      code: 'ERR_REPLICATION_TIMEOUT',
      phase: 'handshake',
      master: `127.0.0.1:${proxy.port}`,
    });
    expect(error.message).toMatch(/could not reach the master within connectTimeout 600 ms \(1 attempt\)/);
    expect(error.cause).toMatchObject({ code: 'ERR_RESP_TIMEOUT' }); // resp's error, wrapped once
    expect(events.filter((e) => e.kind === 'reconnecting')).toHaveLength(0);
  });

  it('nothing listening: retried within connectTimeout, then ERR_REPLICATION_CONNECT with the address and the cause', async () => {
    const free = await spawnRedis();
    const port = free.port;
    await free.stop();
    const { events, error } = await failure(
      new ReplicaListener({ port, connectTimeout: 800, reconnect: { initialDelay: 50, maxDelay: 100 } }),
    );
    expect(error).toMatchObject({ code: 'ERR_REPLICATION_CONNECT', phase: 'connect', master: `127.0.0.1:${port}` });
    expect(error.message).toMatch(/within connectTimeout 800 ms \(\d+ attempts\).*ECONNREFUSED/);
    expect(events.filter((e) => e.kind === 'reconnecting').length).toBeGreaterThan(1);
  });

  it('after a sync, a master gone silent is retried until the strategy gives up: ERR_REPLICATION_GAVE_UP', async () => {
    await using master = await spawnRedis();
    const listener = new ReplicaListener({
      port: master.port,
      readTimeout: 500,
      connectTimeout: 300,
      reconnect: { initialDelay: 10, maxDelay: 20, maxAttempts: 2 },
    });
    const events: ReplicationEvent[] = [];
    let error: Error | undefined;
    try {
      for await (const event of listener) {
        events.push(event);
        if (event.kind === 'snapshot-done') master.suspend();
      }
    } catch (err) {
      error = err as Error;
    } finally {
      master.resume();
    }
    expect(
      events.filter((e) => e.kind === 'reconnecting').map((e) => e.kind === 'reconnecting' && e.error?.code),
    ).toEqual(['ERR_REPLICATION_TIMEOUT', 'ERR_REPLICATION_TIMEOUT']);
    expect(error).toMatchObject({ code: 'ERR_REPLICATION_GAVE_UP', master: `127.0.0.1:${master.port}` });
    expect(error?.message).toMatch(
      /gave up reconnecting after 2 attempts; the last failure \(ERR_REPLICATION_TIMEOUT\)/,
    );
    expect(error?.cause).not.toBeInstanceOf(ReplicationLinkError); // what caused the failure, not our own error again
  });

  it('a frozen master: the read timeout ends the link, and the listener resumes once it thaws', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    await using listener = new ReplicaListener({
      port: master.port,
      readTimeout: 800,
      connectTimeout: 500,
      reconnect: { initialDelay: 50, maxDelay: 200 },
    });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    await client.set('before', 'freeze');
    await recorder.untilSet('before');
    master.suspend();
    const timeout = await recorder.until((e) => e.kind === 'reconnecting');
    expect(timeout).toMatchObject({ error: { code: 'ERR_REPLICATION_TIMEOUT', phase: 'stream' } });
    master.resume();
    await recorder.until((e) => e.kind === 'continued', { timeoutMs: 20_000 });
    await client.set('after', 'thaw');
    await recorder.untilSet('after');
    expectContiguous(recorder.events);
  });
});

describe('a master that cannot serve replicas yet', () => {
  it('newline keep-alives before the +FULLRESYNC reply, while a delayed diskless fork waits', async () => {
    // Redis delays diskless syncs by 5 s by default (repl-diskless-sync-delay) to serve several
    // replicas with one fork, and sends newlines meanwhile, before its reply to PSYNC.
    await using master = await spawnRedis({ config: { 'repl-diskless-sync': 'yes', 'repl-diskless-sync-delay': 2 } });
    await master.createClient({ protocol: 2 }).set('k', 'v');
    await using proxy = await TamperProxy.start(master);
    await using listener = new ReplicaListener({ port: proxy.port });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    const seen = proxy.downstream.toString('latin1');
    const reply = seen.indexOf('+FULLRESYNC');
    expect(seen.slice(0, reply)).toMatch(/\r\n\n+$/); // the last handshake reply, then keep-alives
    expect(recorder.events.find((e) => e.kind === 'entry')).toMatchObject({ key: Buffer.from('k') });
  });

  it('-NOMASTERLINK from a replica without its master: retried until it has one', async () => {
    await using upstream = await spawnRedis();
    await using replica = await spawnRedis({ replicaOf: upstream });
    await waitFor('the replica link', async () => (await replica.info('replication')).master_link_status === 'up');
    await upstream.kill();
    await waitFor(
      'the replica to lose its master',
      async () => (await replica.info('replication')).master_link_status === 'down',
    );
    await using listener = new ReplicaListener({ port: replica.port, reconnect: { initialDelay: 50, maxDelay: 100 } });
    const recorder = new Recorder(listener);
    const refused = await recorder.until((e) => e.kind === 'reconnecting');
    expect(refused).toMatchObject({ error: { code: 'ERR_REPLICATION_UNAVAILABLE', phase: 'psync' } });
    expect((refused as { error: Error }).error.message).toMatch(/NOMASTERLINK/);
    await upstream.start(); // empty: it had no persistence
    await recorder.until((e) => e.kind === 'snapshot-done', { timeoutMs: 30_000 });
    // Through the chain: a write on the upstream master reaches the listener of its replica.
    await upstream.createClient({ protocol: 2 }).set('through', 'the chain');
    await recorder.untilSet('through');
  });

  it('-LOADING while a restarted master loads its dataset: retried until it is ready', async () => {
    // Loading 20,000 keys takes 2 s here, during which the master answers -LOADING (it serves
    // clients between every 1 KiB of RDB it loads).
    await using master = await spawnRedis({
      config: { 'key-load-delay': 100, 'loading-process-events-interval-bytes': 1024 },
    });
    const client = master.createClient({ protocol: 2 });
    await client.call('DEBUG', 'POPULATE', 20_000, 'key', 10);
    await using listener = new ReplicaListener({ port: master.port, reconnect: { initialDelay: 50, maxDelay: 100 } });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    await waitFor('the fork to end', async () => (await master.info('persistence')).rdb_bgsave_in_progress === '0');
    await master.restart();
    const refused = await recorder.until(
      (e) => e.kind === 'reconnecting' && e.error instanceof ReplicationLinkError && /LOADING/.test(e.error.message),
    );
    expect(refused).toMatchObject({ error: { code: 'ERR_REPLICATION_UNAVAILABLE', phase: 'handshake' } });
    await recorder.until((e) => e.kind === 'continued' || e.kind === 'snapshot-done', {
      from: recorder.events.indexOf(refused),
      timeoutMs: 30_000,
    });
    await master.createClient({ protocol: 2 }).set('after', 'loading');
    await recorder.untilSet('after');
  });
});

describe('credentials', () => {
  it('a missing or wrong password, or a user without the rights: ERR_REPLICATION_AUTH at once, no retry', async () => {
    await using master = await spawnRedis({ password: 's3cret' });
    const noReplication = await master.createUser({ username: 'reader', password: 'pw', rules: ['~*', '+@read'] });
    for (const [options, said] of [
      [{}, /requires a password/],
      [{ password: 'wrong' }, /WRONGPASS|wrong user name or password/],
      [{ username: 'reader', password: 'pw' }, /\+psync and \+replconf/],
    ] as const) {
      const { events, error } = await failure(
        new ReplicaListener({ port: master.port, ...options, reconnect: { initialDelay: 10 } }),
      );
      expect(error, JSON.stringify(options)).toMatchObject({ code: 'ERR_REPLICATION_AUTH' });
      expect(error.message).toMatch(said);
      expect(error.message).not.toContain('wrong"'); // never the password
      expect(events.filter((e) => e.kind === 'reconnecting')).toEqual([]);
      if (noReplication.username === 'none') throw new Error('unreachable');
    }
  });

  it('an ACL user with +psync +replconf (+ping) replicates, from a URL too', async () => {
    await using master = await spawnRedis({ password: 's3cret' });
    const user = await master.createUser({
      username: 'replicator',
      password: 'p@ss w0rd',
      rules: ['+psync', '+replconf', '+ping'],
    });
    await master.createClient({ protocol: 2 }).set('k', 'v');
    // Like a Redis replica, it goes on when PING is refused (an ACL user without +ping).
    const noPing = await master.createUser({ username: 'noping', password: 'pw', rules: ['+psync', '+replconf'] });
    const url = `redis://replicator:${encodeURIComponent('p@ss w0rd')}@127.0.0.1:${master.port}`;
    for (const listener of [
      new ReplicaListener(url),
      new ReplicaListener({ port: master.port, username: user.username, password: 'p@ss w0rd' }),
      new ReplicaListener({ port: master.port, username: noPing.username, password: 'pw' }),
    ]) {
      await using _ = listener;
      const recorder = new Recorder(listener);
      await recorder.until((e) => e.kind === 'snapshot-done');
      expect(recorder.events.find((e) => e.kind === 'entry')).toMatchObject({ key: Buffer.from('k') });
    }
  });
});

describe('TLS', () => {
  it('replicates over TLS with the CA, with a client certificate, or insecurely; a wrong CA is a connect error', async () => {
    await using master = await spawnRedis({ tls: true, tlsAuthClients: 'optional' });
    await master.createClient().set('k', 'over tls');
    const material = master.tls;
    if (!material) throw new Error('no TLS material');
    for (const tls of [
      { ca: material.ca },
      { ca: material.ca, cert: material.cert, key: material.key },
      { insecure: true },
    ]) {
      await using listener = new ReplicaListener({ port: master.port, tls });
      const recorder = new Recorder(listener);
      await recorder.until((e) => e.kind === 'snapshot-done');
      await master.createClient().set('after', 'tls');
      await recorder.untilSet('after');
    }
    const { error } = await failure(new ReplicaListener({ port: master.port, tls: true, reconnect: false }));
    expect(error).toMatchObject({ code: 'ERR_REPLICATION_CONNECT', phase: 'connect' });
  });
});

describe('a failover', () => {
  it('a promoted replica continues the stream under its new replication ID (+CONTINUE <replid>)', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    await using replica = await spawnRedis({ replicaOf: master });
    await waitFor('the replica link', async () => (await replica.info('replication')).master_link_status === 'up');
    const first = new ReplicaListener({ port: master.port });
    for await (const event of first) {
      if (event.kind === 'snapshot-done') await client.set('before', 'failover');
      if (event.kind === 'command' && event.args[0]?.toString() === 'before') break;
    }
    const saved = first.checkpoint;
    await waitFor(
      'the replica to catch up',
      async () => Number((await replica.info('replication')).master_repl_offset) === saved?.replOffset,
    );
    await replica.command('REPLICAOF', 'NO', 'ONE');
    const newId = (await replica.info('replication')).master_replid;
    expect(newId).not.toBe(saved?.replId);
    await using second = new ReplicaListener({ port: replica.port, ...saved });
    const recorder = new Recorder(second);
    const continued = await recorder.until((e) => e.kind === 'continued');
    expect(continued).toMatchObject({ replId: newId, offset: saved?.replOffset });
    await replica.createClient({ protocol: 2 }).set('after', 'failover');
    await recorder.untilSet('after');
    expect(second.checkpoint?.replId).toBe(newId);
    expectContiguous(recorder.events);
  });
});

describe('long idle periods', () => {
  it('stay connected: the master PINGs, nothing times out', async () => {
    await using master = await spawnRedis({ config: { 'repl-ping-replica-period': 1 } });
    await using listener = new ReplicaListener({ port: master.port, readTimeout: 2500 });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(recorder.commands().filter((c) => c.name === 'PING').length).toBeGreaterThanOrEqual(2);
    expect(recorder.kinds()).not.toContain('reconnecting');
    await master.createClient({ protocol: 2 }).set('after', 'idle');
    await recorder.untilSet('after');
    expect(listener.stats).toMatchObject({ connections: 1, fullSyncs: 1, partialSyncs: 0 });
  });
});
