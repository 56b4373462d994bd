"""Gold tables for the export tests, created by hand per docs/contracts.md.

The values are chosen to catch the usual export bugs: a month boundary (31 Jan / 1 Feb,
plus a leap day), a zero-filled row, cents, an amount using all 18 integer digits of
numeric(20,2) (a double cannot hold it exactly), and a name with a comma.
"""

from __future__ import annotations

import psycopg

DDL = """
create schema if not exists gold;
create table gold.transacoes_por_condominio (
    condominio_id integer, nome_condominio varchar(255),
    qtd_transacoes bigint, valor_total numeric(20,2));
create table gold.transacoes_por_morador (
    morador_id integer, nome_morador varchar(255), condominio_id integer,
    qtd_transacoes bigint, valor_total numeric(20,2));
create table gold.transacoes_diarias_por_tipo_imovel (
    data_transacao date, tipo_imovel varchar(50),
    qtd_transacoes bigint, valor_total numeric(20,2), valor_medio numeric(15,2));
"""

CONDOMINIO_ROWS = [
    (1, "Residencial Jardim, Bloco A", 11, "10655000.00"),
    (2, "Edifício Solar", 10, "9865000.00"),
    (3, "Condomínio Aurora", 1, "1080000.00"),
    (4, "Condomínio Vazio", 0, "0.00"),
]

MORADOR_ROWS = [
    (1, "Ana Souza", 1, 3, "1234567.89"),
    (2, "Bruno Lima", 1, 1, "0.01"),
    (3, "Carla Dias", 2, 2, "999999999999999999.99"),
    (4, "Davi Rocha", 3, 0, "0.00"),
]

DAILY_ROWS = [
    ("2024-01-30", "Apartamento", 2, "700000.50", "350000.25"),
    ("2024-01-31", "Apartamento", 1, "480000.00", "480000.00"),
    ("2024-01-31", "Casa", 3, "1500000.10", "500000.03"),
    ("2024-02-01", "Apartamento", 1, "320000.99", "320000.99"),
    ("2024-02-29", "Sala Comercial", 2, "250000.01", "125000.01"),
    ("2024-03-15", "Casa", 1, "1080000.00", "1080000.00"),
]


def create_gold(conn: psycopg.Connection) -> None:
    conn.execute(DDL)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into gold.transacoes_por_condominio values (%s, %s, %s, %s::numeric)",
            CONDOMINIO_ROWS,
        )
        cur.executemany(
            "insert into gold.transacoes_por_morador values (%s, %s, %s, %s, %s::numeric)",
            MORADOR_ROWS,
        )
        cur.executemany(
            "insert into gold.transacoes_diarias_por_tipo_imovel "
            "values (%s::date, %s, %s, %s::numeric, %s::numeric)",
            DAILY_ROWS,
        )
    conn.commit()
