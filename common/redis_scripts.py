"""The Lua scripts of the job store and the queue: each runs atomically in Redis.

Scripts whose first write frees or moves data (DEL, LPOP) may write on when Redis is full
(maxmemory): Redis 6.2 and 7 refuse a script's denyoom commands only before its first write.
"""

# XCLAIM ... JUSTID only if the entry is still pending for this consumer (atomic in Redis)
TOUCH_IF_OWNED = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if pending[1] == nil or pending[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""

# KEYS: stream, tenants (sorted set), turns, last turns; ARGV: group, a tenant queue's key around
# the tenant name. Only when no dispatched entry waits undelivered (after the group's last
# delivered id: an acked entry left undeleted never blocks it). Its first write is an LPOP
# (allowed when Redis is full), so its later writes go through too: a job moves, a few bytes.
DISPATCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOGROUP no stream') end
local last
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  if fields['name'] == ARGV[1] then last = fields['last-delivered-id'] end
end
if not last then return redis.error_reply('NOGROUP no consumer group ' .. ARGV[1]) end
if #redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1) > 0 then return 0 end
while true do
  local tenant = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not tenant then return 0 end
  local queue = ARGV[2] .. tenant .. ARGV[3]
  local job_id = redis.call('LPOP', queue)
  local turn = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[4], tenant, turn)
  if redis.call('LLEN', queue) == 0 then
    redis.call('ZREM', KEYS[2], tenant)
  else
    redis.call('ZADD', KEYS[2], turn, tenant)
  end
  if job_id then
    redis.call('XADD', KEYS[1], '*', 'job_id', job_id)
    return 1
  end
end
"""

# KEYS: job, its input, job counts, its model (or the job again), its tenant's active jobs and
# queue, its queued and cancelled index cells, its model's report; ARGV: now, kind, job id when
# it makes a model, job TTL, the unfinished report and record summary (JSON) for a model an
# earlier attempt published (it stays ready). Its first writes are a DEL and an HDEL (allowed
# when Redis is full); once one of them has removed something, Redis lets the script's later
# writes through, which keeps it atomic (6.2 and 7 alike). It unnames the job's input (an
# earlier version's: deletes it) and moves one index entry: it grows nothing that it does not
# free (a pending report is replaced by a shorter one). The caller deletes the unnamed blobs.
CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state == 'succeeded' or state == 'failed' or state == 'cancelled' then
  return {'finished', state}
end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'input')
if state ~= 'queued' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1')
  return {'running'}
end
redis.call('HDEL', KEYS[1], 'snapshot')
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished', ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2] .. ':cancelled', 1)
redis.call('SREM', KEYS[5], KEYS[1]:match('[^:]+$'))
redis.call('LREM', KEYS[6], 0, KEYS[1]:match('[^:]+$'))
redis.call('ZREM', KEYS[7], KEYS[1]:match('[^:]+$'))
redis.call('ZADD', KEYS[8], redis.call('HGET', KEYS[1], 'created'), KEYS[1]:match('[^:]+$'))
redis.call('EXPIRE', KEYS[8], ARGV[4])
if ARGV[3] ~= '' and redis.call('HGET', KEYS[4], 'job_id') == ARGV[3] then
  if redis.call('HGET', KEYS[4], 'state') == 'ready' then
    redis.call('HSET', KEYS[4], 'report_state', 'unfinished', 'report_summary', ARGV[6])
    redis.call('SET', KEYS[9], ARGV[5], 'KEEPTTL')
  else
    redis.call('HSET', KEYS[4], 'state', 'cancelled')
  end
end
return {'cancelled'}
"""

# KEYS: stream; ARGV: group, entry id. Acknowledge and delete together: XACK first (allowed when
# Redis is full), so XDEL goes through too; never an acked entry left in the stream.
ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""
