-- pgbench -n -f place_pay.sql -D users=U -D products=P: one pgbench transaction is one
-- place+pay pair, as in orderbench. 2 or 3 distinct products, quantity 1 each, a random user.
\set uid random(1, :users)
\set n random(2, 3)
\set p1 random(1, :products)
\set d2 random(1, :products - 1)
\set p2 (:p1 - 1 + :d2) % :products + 1
\set d3 random(1, :products - 2)
\set d3 case when :d3 >= :d2 then :d3 + 1 else :d3 end
\set p3 (:p1 - 1 + :d3) % :products + 1
\if :n = 2
\set p3 :p2
\endif
-- Transaction 1, order.place: reserve every item's stock and insert the order (RESERVED).
-- One UPDATE over the IN list locks the rows in index order: no deadlocks between orders.
BEGIN;
UPDATE inventory SET available = available - 1, reserved = reserved + 1
  WHERE product_id IN (:p1, :p2, :p3) AND available >= 1;
INSERT INTO orders (user_id, status, total_cents, created_at, updated_at, expires_at)
  SELECT :uid, 'RESERVED', sum(price_cents), now(), now(), now() + interval '15 minutes'
  FROM products WHERE product_id IN (:p1, :p2, :p3)
  RETURNING order_id \gset
INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
  SELECT :order_id, product_id, 1, price_cents FROM products WHERE product_id IN (:p1, :p2, :p3);
COMMIT;
-- Transaction 2, order.pay: debit the wallet, move reserved to sold, mark the order PAID.
BEGIN;
UPDATE users SET balance_cents = balance_cents - o.total_cents
  FROM orders o
  WHERE o.order_id = :order_id AND users.user_id = o.user_id AND o.status = 'RESERVED';
UPDATE inventory SET reserved = reserved - 1, sold = sold + 1
  WHERE product_id IN (:p1, :p2, :p3);
UPDATE orders SET status = 'PAID', updated_at = now(), expires_at = NULL
  WHERE order_id = :order_id AND status = 'RESERVED';
COMMIT;
