{{ config(alias='condominios') }}

with

latest as (
    {{ latest_version_by_id(source('bronze', 'condominios'), 'condominio_id') }}
),

final as (
    select
        cast(latest.condominio_id as integer) as condominio_id,
        {{ as_varchar('trim(latest.nome)', 255) }} as nome,
        {{ as_text('trim(latest.endereco)') }} as endereco,
        {{ lineage_columns('latest') }}
    from latest
)

select * from final
