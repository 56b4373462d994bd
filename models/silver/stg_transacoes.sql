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

{#-
    Candidates of an incremental run: the transactions whose silver row may differ from the
    previous run, because their own bronze rows were (re)loaded after the cutoff, or their
    property or resident (any version of them) was, or a condominium those reference was.
    Deliberately a superset: a candidate that did not change is rebuilt to the same row.
    Finding transactions by property or resident reads all of bronze transactions, so that
    part is left out when no property, resident or condominium was loaded after the cutoff
    (the usual run, which only appends transactions).
-#}
{%- if is_incremental() %}
{%- set cutoff = incremental_cutoff() %}
{%- set references_loaded = rows_loaded_since([
    source('bronze', 'imoveis'), source('bronze', 'moradores'), source('bronze', 'condominios'),
], cutoff) %}
{%- endif %}

with

imoveis as (
    select imovel_id from {{ ref('stg_imoveis') }}
),

moradores as (
    select morador_id from {{ ref('stg_moradores') }}
),

{% if is_incremental() -%}
candidates as (
    select distinct tx.transacao_id
    from {{ source('bronze', 'transacoes') }} as tx
    where tx._loaded_at > {{ cutoff }}
    {%- if references_loaded %}
    union
    select tx.transacao_id
    from {{ source('bronze', 'transacoes') }} as tx
    where
        tx.imovel_id in (
            {{ ids_loaded_since(source('bronze', 'imoveis'), 'imovel_id', cutoff,
                parent=source('bronze', 'condominios'), parent_key='condominio_id',
                include_current=false) | indent(12) }}
        )
        or tx.morador_id in (
            {{ ids_loaded_since(source('bronze', 'moradores'), 'morador_id', cutoff,
                parent=source('bronze', 'condominios'), parent_key='condominio_id',
                include_current=false) | indent(12) }}
        )
    {%- endif %}
    {{- current_ids_when_reprocessing('transacao_id', cutoff) }}
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
),

final as (
    {{ replace_scope_batch('valid', 'candidates') }}
)

select * from final
