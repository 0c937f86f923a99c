-- Library. Stage an event: ``blob`` is the six outbox fields (the order of Outbox.entry) joined
-- by "\n", one script argument instead of six - packing arguments is much of a pipeline's
-- client cost. No field can hold a newline: ids, types, topics and keys are slugs, value and
-- headers are compact JSON, which escapes control characters.
local function stage(stream, blob)
  local f = {}
  local start = 1
  for i = 1, 5 do
    local stop = string.find(blob, '\n', start, true)
    f[i] = string.sub(blob, start, stop - 1)
    start = stop + 1
  end
  redis.call('XADD', stream, '*', 'id', f[1], 'type', f[2], 'topic', f[3], 'key', f[4],
    'value', f[5], 'headers', string.sub(blob, start))
end
