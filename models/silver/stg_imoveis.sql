{{
    config(
        alias='imoveis',
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='imovel_id',
        track_changes=true,
        on_schema_change='ignore',
        post_hook=[
            "{{ record_watermark() }}",
            {"sql": "{{ vacuum_analyze() }}", "transaction": false},
        ],
        indexes=[{'columns': ['imovel_id'], 'unique': True}],
    )
}}

with

condominios as (
    select condominio_id from {{ ref('stg_condominios') }}
),

tipos_imovel as (
    select tipo from {{ ref('tipos_imovel') }}
),

{% if is_incremental() -%}
candidates as (
    {{ ids_loaded_since(
        source('bronze', 'imoveis'), 'imovel_id', incremental_cutoff(),
        parent=source('bronze', 'condominios'), parent_key='condominio_id',
    ) | indent(4) }}
),
{%- endif %}

latest as (
    {{ latest_version_by_id(
        source('bronze', 'imoveis'),
        'imovel_id',
        where=('bronze_rows.imovel_id in (select candidates.imovel_id from candidates)'
            if is_incremental() else none),
    ) }}
),

cleaned as (
    select
        latest.*,
        trim({{ collapse_whitespace('latest.tipo') }}) as tipo_limpo
    from latest
),

valid as (
    select
        cast(cleaned.imovel_id as integer) as imovel_id,
        {{ as_varchar('coalesce(tipos_imovel.tipo, cleaned.tipo_limpo)', 50) }} as tipo,
        cast(cleaned.condominio_id as integer) as condominio_id,
        cast(cleaned.valor as decimal(15, 2)) as valor,
        {{ lineage_columns('cleaned') }}
    from cleaned
    inner join condominios
        on cleaned.condominio_id = condominios.condominio_id
    left join tipos_imovel
        on lower(cleaned.tipo_limpo) = lower(tipos_imovel.tipo)
),

final as (
    {{ replace_scope_batch('valid', 'candidates') }}
)

select * from final
