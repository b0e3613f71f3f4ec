-- The language an enterprise's receipts and API answers are written in:
-- 'nb' (Norwegian bokmål) or 'en'; '' means the service's
-- --default-language. Codes, column names and statuses are never
-- translated. (Version 7 is a Go migration: see gomigrations.go.)

-- +goose Up
ALTER TABLE enterprises ADD COLUMN language TEXT NOT NULL DEFAULT ''
    CHECK (language IN ('', 'nb', 'en'));

-- +goose Down
ALTER TABLE enterprises DROP COLUMN language;
