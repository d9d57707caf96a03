// ClusterReplicaListener takes every shard listener option except those that name one node or one
// position, plus its own; anything else is refused before a connection is made.
import { describe, expect, it } from 'vitest';
import { ClusterReplicaListener } from '../src/index.ts';

const url = 'redis://127.0.0.1:1';

describe('ClusterReplicaListener options', () => {
  it('takes the shard listener options and its own', () => {
    const listener = new ClusterReplicaListener({
      url,
      connectTimeout: 1000,
      reconnect: { maxAttempts: 1 },
      maxQueuedEvents: 10,
      refreshInterval: 1000,
      checkpoint: { shards: [] },
    });
    expect(listener).toBeInstanceOf(ClusterReplicaListener);
  });

  it.each(['replId', 'replOffset', 'db', 'path', 'refreshIntervall'])('refuses %s', (name) => {
    expect(() => new ClusterReplicaListener({ url, [name]: 1 } as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_REPLICATION_ARGUMENT',
        message: expect.stringContaining(`ClusterReplicaListener has no option "${name}"`),
      }),
    );
  });
});
