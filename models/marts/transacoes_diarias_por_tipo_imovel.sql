{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='data_transacao',
        on_schema_change='ignore',
        post_hook=[
            "{{ create_watermark_table() }}",
            "{{ record_watermark() }}",
        ],
        indexes=[{'columns': ['data_transacao', 'tipo_imovel'], 'unique': True}],
    )
}}

-- The incremental branch finds the days a late load affects from bronze lineage, which
-- still holds every version of a transaction (and so the day it used to belong to):
-- depends_on: {{ source('bronze', 'transacoes') }}
-- depends_on: {{ source('bronze', 'imoveis') }}
-- depends_on: {{ source('bronze', 'moradores') }}
-- depends_on: {{ source('bronze', 'condominios') }}

with

{% if is_incremental() -%}
changed_transactions as (
    {{ changed_transaction_ids(incremental_cutoff()) }}
),

changed_days as (
    select distinct versions.data_transacao
    from {{ source('bronze', 'transacoes') }} as versions
    inner join changed_transactions
        on versions.transacao_id = changed_transactions.transacao_id
),
{%- endif %}

transacoes as (
    select
        transacoes.data_transacao,
        imoveis.tipo as tipo_imovel,
        transacoes.valor_transacao
    from {{ ref('stg_transacoes') }} as transacoes
    inner join {{ ref('stg_imoveis') }} as imoveis
        on transacoes.imovel_id = imoveis.imovel_id
    {%- if is_incremental() %}
    where transacoes.data_transacao in (select changed_days.data_transacao from changed_days)
    {%- endif %}
),

diarias as (
    select
        data_transacao,
        tipo_imovel,
        count(*) as qtd_transacoes,
        sum(valor_transacao) as valor_total
    from transacoes
    group by data_transacao, tipo_imovel
),

final as (
    select
        cast(data_transacao as date) as data_transacao,
        {{ as_varchar('tipo_imovel', 50) }} as tipo_imovel,
        cast(qtd_transacoes as bigint) as qtd_transacoes,
        cast(valor_total as decimal(20, 2)) as valor_total,
        cast({{ half_up_average('valor_total', 'qtd_transacoes', 2) }} as decimal(15, 2))
            as valor_medio
    from diarias
)

{% if is_incremental() -%}
select
    final.*,
    false as _scope_only
from final

union all

-- One marker per affected day: its old rows go even when no transaction is left on it.
select
    cast(changed_days.data_transacao as date) as data_transacao,
    {{ as_varchar('null', 50) }} as tipo_imovel,
    cast(null as bigint) as qtd_transacoes,
    cast(null as decimal(20, 2)) as valor_total,
    cast(null as decimal(15, 2)) as valor_medio,
    true as _scope_only
from changed_days
{%- else -%}
select * from final
{%- endif %}
