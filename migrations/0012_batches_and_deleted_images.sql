-- Delete my image: the message and the stored objects are gone, the generation and its
-- ledger stay (what was paid for was made), marked with when it was deleted.
-- (A batch of `--n` images needs no column: it is a compare group of one model.)
ALTER TABLE generations ADD COLUMN deleted_at timestamptz;
