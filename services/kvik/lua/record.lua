-- Needs stage, record_fn. A whole session: KEYS session, kiosk, catalogue, outbox.
return record(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV[6])
