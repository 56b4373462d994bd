{{
    config(
        alias='transacoes',
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='transacao_id',
        track_changes=true,
        on_schema_change='ignore',
        post_hook=["{{ record_watermark() }}"],
        indexes=[{'columns': ['transacao_id'], 'unique': True}],
    )
}}

-- The incremental branch also reads these, to find the transactions a late load affects:
-- depends_on: {{ source('bronze', 'imoveis') }}
-- depends_on: {{ source('bronze', 'moradores') }}
-- depends_on: {{ source('bronze', 'condominios') }}

with

{% if is_incremental() -%}
candidates as (
    {{ changed_transaction_ids(incremental_cutoff()) }}
),
{%- endif %}

latest as (
    {{ latest_version_by_id(
        source('bronze', 'transacoes'),
        'transacao_id',
        where=('bronze_rows.transacao_id in (select candidates.transacao_id from candidates)'
            if is_incremental() else none),
    ) }}
),

imoveis as (
    select imovel_id from {{ ref('stg_imoveis') }}
),

moradores as (
    select morador_id from {{ ref('stg_moradores') }}
),

valid as (
    select
        cast(latest.transacao_id as integer) as transacao_id,
        cast(latest.imovel_id as integer) as imovel_id,
        cast(latest.morador_id as integer) as morador_id,
        cast(latest.data_transacao as date) as data_transacao,
        cast(latest.valor_transacao as decimal(15, 2)) as valor_transacao,
        {{ lineage_columns('latest') }}
    from latest
    inner join imoveis
        on latest.imovel_id = imoveis.imovel_id
    inner join moradores
        on latest.morador_id = moradores.morador_id
)

{% if is_incremental() -%}
select
    valid.*,
    false as _scope_only
from valid

union all

-- One marker per candidate: its old row goes even when it has no valid new one.
{{ scope_markers('transacao_id', 'candidates',
    ['integer', 'integer', 'date', 'decimal(15, 2)'], lineage=true) }}
{%- else -%}
select * from valid
{%- endif %}
