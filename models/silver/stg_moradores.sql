{{
    config(
        alias='moradores',
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='morador_id',
        track_changes=true,
        on_schema_change='ignore',
        post_hook=[
            "{{ record_watermark() }}",
            {"sql": "{{ vacuum_analyze() }}", "transaction": false},
        ],
        indexes=[{'columns': ['morador_id'], 'unique': True}],
    )
}}

with

condominios as (
    select condominio_id from {{ ref('stg_condominios') }}
),

{% if is_incremental() -%}
candidates as (
    {{ ids_loaded_since(
        source('bronze', 'moradores'), 'morador_id', incremental_cutoff(),
        parent=source('bronze', 'condominios'), parent_key='condominio_id',
    ) | indent(4) }}
),
{%- endif %}

latest as (
    {{ latest_version_by_id(
        source('bronze', 'moradores'),
        'morador_id',
        where=('bronze_rows.morador_id in (select candidates.morador_id from candidates)'
            if is_incremental() else none),
    ) }}
),

valid as (
    select
        cast(latest.morador_id as integer) as morador_id,
        {{ as_varchar('trim(latest.nome)', 255) }} as nome,
        cast(latest.condominio_id as integer) as condominio_id,
        cast(latest.data_registro as date) as data_registro,
        {{ lineage_columns('latest') }}
    from latest
    inner join condominios
        on latest.condominio_id = condominios.condominio_id
),

final as (
    {{ replace_scope_batch('valid', 'candidates') }}
)

select * from final
