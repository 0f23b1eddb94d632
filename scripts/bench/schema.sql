-- PostgreSQL side of scripts/bench.sh: the shop as a monolith would hold it.
-- psql -v users=U -v products=P -f schema.sql
CREATE TABLE users (
  user_id int PRIMARY KEY,
  name text NOT NULL,
  balance_cents bigint NOT NULL CHECK (balance_cents >= 0)
);
CREATE TABLE products (
  product_id int PRIMARY KEY,
  name text NOT NULL,
  price_cents bigint NOT NULL
);
CREATE TABLE inventory (
  product_id int PRIMARY KEY REFERENCES products,
  available bigint NOT NULL CHECK (available >= 0),
  reserved bigint NOT NULL CHECK (reserved >= 0),
  sold bigint NOT NULL
);
CREATE TABLE orders (
  order_id bigserial PRIMARY KEY,
  user_id int NOT NULL REFERENCES users,
  status text NOT NULL,
  total_cents bigint NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  expires_at timestamptz
);
CREATE TABLE order_items (
  order_id bigint NOT NULL REFERENCES orders,
  product_id int NOT NULL REFERENCES products,
  quantity int NOT NULL,
  unit_price_cents bigint NOT NULL,
  PRIMARY KEY (order_id, product_id)
);
INSERT INTO users SELECT u, 'user ' || u, 100000000000 FROM generate_series(1, :users) u;
INSERT INTO products SELECT p, 'product ' || p, 100 + p % 900 FROM generate_series(1, :products) p;
-- Stock enough for any run (ordermesh's orderbench sizes it per run; here it never runs out).
INSERT INTO inventory SELECT p, 1000000000, 0, 0 FROM generate_series(1, :products) p;
VACUUM ANALYZE;
